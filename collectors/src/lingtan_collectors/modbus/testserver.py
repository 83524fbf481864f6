"""A real pymodbus 3.16 Modbus TCP server with scriptable registers and faults, for the
Modbus collector's tests and its throughput benchmark.

Each unit id is one pymodbus ``SimDevice`` with separate holding (function 3) and input
(function 4) register blocks; undefined addresses answer exception 2 as a real device
would. A per-unit ``action`` hook (run by pymodbus on every access) copies the current
values from :attr:`RegisterServer.registers` into the response and applies the unit's
fault (every request is recorded in :attr:`RegisterServer.requests` as it arrives):

* ``exception``: answer with that Modbus exception code;
* ``delay_s``: answer late (a slow device or a congested gateway);
* ``silent``: never answer (the server is built with ``ignore_missing_devices=True`` and
  the hook raises pymodbus' ``NoSuchIdException``, which makes it drop the request).

Run stand-alone (used by ``bench.py``)::

    python -m lingtan_collectors.modbus.testserver --port 15020 --units 8 --registers 200
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

Registers = dict[int, dict[int, int]]  # function (3|4) -> address -> register value


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Fault:
    """What a unit does wrong right now (all off by default)."""

    exception: int | None = None
    delay_s: float = 0.0
    silent: bool = False
    #: only requests overlapping these registers (inclusive) are affected; None = all
    addresses: tuple[int, int] | None = None


@dataclass
class Request:
    unit_id: int
    function: int
    address: int
    count: int


def _runs(addresses: Mapping[int, int]) -> list[tuple[int, list[int]]]:
    """Contiguous runs of defined addresses: [(start, [values...]), ...]."""
    runs: list[tuple[int, list[int]]] = []
    for addr in sorted(addresses):
        if runs and runs[-1][0] + len(runs[-1][1]) == addr:
            runs[-1][1].append(addresses[addr])
        else:
            runs.append((addr, [addresses[addr]]))
    return runs


def _block(addresses: Mapping[int, int]) -> list[SimData]:
    if not addresses:
        return [SimData(address=0, datatype=DataType.INVALID)]
    return [SimData(address=start, values=values, datatype=DataType.REGISTERS) for start, values in _runs(addresses)]


@dataclass
class RegisterServer:
    """Modbus TCP server on ``host:port`` for the units in ``registers``."""

    registers: dict[int, Registers]
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    record: bool = True
    faults: dict[int, Fault] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        for unit_id, regs in self.registers.items():
            regs.setdefault(3, {})
            regs.setdefault(4, {})
            self.faults.setdefault(unit_id, Fault())
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ control
    def set_registers(self, unit_id: int, function: int, address: int, values: list[int]) -> None:
        """Change register values (the addresses must have been defined at construction)."""
        block = self.registers[unit_id][function]
        for i, v in enumerate(values):
            if address + i not in block:
                raise KeyError(f"unit {unit_id} fc{function} register {address + i} was not defined")
            block[address + i] = v & 0xFFFF

    def fault(self, unit_id: int, **kwargs: object) -> None:
        """Replace unit ``unit_id``'s fault, e.g. ``fault(2, silent=True)``; ``fault(2)`` clears it."""
        self.faults[unit_id] = Fault(**kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ pymodbus hooks
    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        """Record every request as received, before pymodbus validates it."""
        if self.record and not sending:
            self.requests.append(Request(pdu.dev_id, pdu.function_code, pdu.address, pdu.count))
        return pdu

    async def _action(self, unit_id: int, function_code: int, start_address: int, address: int, count: int,
                      current_registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        fault = self.faults[unit_id]
        hit = fault.addresses is None or (address <= fault.addresses[1] and address + count - 1 >= fault.addresses[0])
        if hit and fault.silent:
            raise NoSuchIdException(f"unit {unit_id} is silent")
        if hit and fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)
        if hit and fault.exception is not None:
            return ExcCodes(fault.exception)
        block = self.registers[unit_id].get(function_code, {})
        for a in range(address, address + count):
            if a in block:
                current_registers[a - start_address] = block[a]
        return None

    def _devices(self) -> list[SimDevice]:
        devices = []
        for unit_id, regs in sorted(self.registers.items()):
            simdata = ([SimData(address=0, values=[False], datatype=DataType.BITS)],
                       [SimData(address=0, values=[False], datatype=DataType.BITS)],
                       _block(regs[3]), _block(regs[4]))
            devices.append(SimDevice(id=unit_id, simdata=simdata,
                                     action=functools.partial(self._action, unit_id)))
        return devices

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> RegisterServer:
        """Start serving in the running event loop; returns once the port accepts connections."""
        self._server = ModbusTcpServer(self._devices(), address=(self.host, self.port), ignore_missing_devices=True,
                                       trace_pdu=self._trace_pdu)
        self._task = asyncio.create_task(self._server.serve_forever())
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            await writer.wait_closed()
            return self
        raise RuntimeError(f"Modbus test server did not start on {self.host}:{self.port}")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def __aenter__(self) -> RegisterServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def uniform_registers(units: int, count: int, value: int = 0) -> dict[int, Registers]:
    """Units 1..``units``, each with ``count`` holding and input registers set to ``value``."""
    return {u: {3: dict.fromkeys(range(count), value), 4: dict.fromkeys(range(count), value)}
            for u in range(1, units + 1)}


async def _serve(port: int, units: int, count: int) -> None:
    server = RegisterServer(uniform_registers(units, count, 7), port=port, record=False)
    await server.start()
    print(f"listening on 127.0.0.1:{port} with units 1..{units}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=15020)
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--registers", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.units, args.registers))


if __name__ == "__main__":
    main()
