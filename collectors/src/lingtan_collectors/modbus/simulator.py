"""Simulated Modbus TCP devices (pymodbus 3.16 SimDevice): the one Modbus server of the golden
tests, the benchmarks and the park simulator.

:class:`RegisterServer` serves units (slave addresses behind one socket), one ``SimDevice`` per
unit id with *separate* register blocks (the 4-tuple form of ``SimDevice.simdata``), so holding
registers (fc 3) and input registers (fc 4) at the same address are different registers, as on a
real meter. Undefined addresses answer exception 02 (ILLEGAL DATA ADDRESS); registers are
read-only. Coils and discrete inputs are not used by the park model; pymodbus needs a block for
each, so a unit answers 16 read-only ``False`` coils/inputs at address 0. A per-unit ``action``
hook (run by pymodbus on every access) copies the current values into the response and applies
the unit's fault: an exception code, a late answer, or none at all (every request is recorded in
:attr:`RegisterServer.requests` as it arrives).

:class:`ModbusSimServer` is the park's gateway: the Modbus points of the devices sharing one
host:port, each occupying its registers with its data type, word order and byte order, values
refreshed every tick from the park simulator and its faults applied on every request. Unknown
unit ids answer exception 0B (GATEWAY TARGET FAILED TO RESPOND).

Run stand-alone (the Modbus benchmarks)::

    python -m lingtan_collectors.modbus.simulator --port 15020 --units 8 --registers 200
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from lingtan.park.index import PointRef
from lingtan_collectors.common import codec
from lingtan_collectors.common.simulation import (
    EmissionSink,
    FaultKind,
    FaultSource,
    ValueSource,
    value_record,
)
from lingtan_collectors.modbus.model import ModbusDevice

log = logging.getLogger(__name__)

Registers = dict[int, dict[int, int]]  # function (3|4) -> address -> register value
#: ``(unit_id, function, address, count) -> exception code or None``; may raise NoAnswer
FaultHook = Callable[[int, int, int, int], Awaitable[ExcCodes | None]]

EXCEPTION_FAULTS = {
    FaultKind.modbus_illegal_address: ExcCodes.ILLEGAL_ADDRESS,
    FaultKind.modbus_device_failure: ExcCodes.DEVICE_FAILURE,
}


#: faults under which a point's registers cannot be read
UNREADABLE = (FaultKind.silent, *EXCEPTION_FAULTS)


class NoAnswer(Exception):
    """Raised by the action hook: the request is dropped without a response."""


class _RequestHandler(ServerRequestHandler):
    """Per-connection handler that can drop a request and that keeps a delayed response's identity.

    pymodbus 3.16's handler reads ``self.last_pdu`` again *after* awaiting the datastore,
    so a response delayed by the action hook would carry the transaction id of a later
    request on the same connection. This handler captures the request first.
    """

    async def handle_request(self) -> None:
        pdu, addr = self.last_pdu, self.last_addr
        if not pdu:
            return
        server: _TcpServer = self.server
        if pdu.dev_id not in server.unit_ids:
            if not server.gateway:
                return  # a plain device ignores requests for another unit id
            response = ExceptionResponse(pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
        else:
            try:
                response = await pdu.datastore_update(server.context, pdu.dev_id)
            except NoAnswer:
                return
            except Exception:
                log.exception("Modbus request failed")
                response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
        response.transaction_id = pdu.transaction_id
        response.dev_id = pdu.dev_id
        self.server_send(response, addr)


class _TcpServer(ModbusTcpServer):
    unit_ids: frozenset[int] = frozenset()
    gateway: bool = True  # unknown unit ids answer exception 0B (a gateway) or nothing (a single device)

    def callback_new_connection(self) -> ServerRequestHandler:
        return _RequestHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


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
    return [SimData(address=start, values=values, datatype=DataType.REGISTERS, readonly=True)
            for start, values in _runs(addresses)]


@dataclass
class RegisterServer:
    """Modbus TCP server on ``host:port`` for the units in ``registers`` (read-only registers).

    ``faults`` are scripted per unit (tests). ``fault_hook``, when given, is awaited first on
    every register request with ``(unit_id, function, address, count)``: it may sleep (a slow
    device), return an exception code, or raise :class:`NoAnswer` (the park simulator's faults).
    ``gateway``: unknown unit ids answer exception 0B instead of nothing.
    """

    registers: dict[int, Registers]
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    record: bool = True
    faults: dict[int, Fault] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    gateway: bool = False
    fault_hook: FaultHook | None = None

    def __post_init__(self) -> None:
        for unit_id, regs in self.registers.items():
            regs.setdefault(3, {})
            regs.setdefault(4, {})
            self.faults.setdefault(unit_id, Fault())
        self._server: _TcpServer | None = None
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
        if self.fault_hook is not None:
            code = await self.fault_hook(unit_id, function_code, address, count)
            if code is not None:
                return code
        fault = self.faults[unit_id]
        hit = fault.addresses is None or (address <= fault.addresses[1] and address + count - 1 >= fault.addresses[0])
        if hit and fault.silent:
            raise NoAnswer(f"unit {unit_id} is silent")
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
            bits = [SimData(address=0, values=[False] * 16, datatype=DataType.BITS, readonly=True)]
            simdata = (bits, list(bits), _block(regs[3]), _block(regs[4]))
            devices.append(SimDevice(id=unit_id, simdata=simdata,
                                     action=functools.partial(self._action, unit_id)))
        return devices

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> RegisterServer:
        """Start serving in the running event loop; returns once the port accepts connections."""
        self._server = _TcpServer(self._devices(), address=(self.host, self.port), trace_pdu=self._trace_pdu)
        self._server.unit_ids = frozenset(self.registers)
        self._server.gateway = self.gateway
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


@dataclass
class _Point:
    ref: PointRef
    index: int  # position in the park's point index (ValueSource.values)
    device: ModbusDevice


class ModbusSimServer:
    """Serves the Modbus points of the devices that share one host:port (the park's gateway).

    Parameters
    ----------
    host, port : str, int
        Where to listen.
    devices : list of ModbusDevice
        Devices (gateways) served on this socket; their unit ids must not overlap.
    refs : list of PointRef
        All points of the park.
    faults : FaultSource
        Fault state, consulted on every request.
    current_tick : callable
        Returns the simulator's current tick.
    """

    def __init__(self, host: str, port: int, devices: list[ModbusDevice], refs: list[PointRef],
                 faults: FaultSource, current_tick: Callable[[], int]) -> None:
        self.host = host
        self.port = port
        self.faults = faults
        self.current_tick = current_tick
        by_id = {d.id: d for d in devices}
        self.points: list[_Point] = []
        self.registers: dict[int, Registers] = {}
        self.owner: dict[tuple[int, int], dict[int, int]] = {}  # (unit, fc) -> address -> index into points
        unit_device: dict[int, str] = {}
        for index, ref in enumerate(refs):
            b = ref.point.modbus
            if ref.device_id not in by_id or b is None:
                continue
            if unit_device.setdefault(b.unit_id, ref.device_id) != ref.device_id:
                raise ValueError(f"unit id {b.unit_id} is used by devices {unit_device[b.unit_id]} and {ref.device_id} on {host}:{port}")
            owner = self.owner.setdefault((b.unit_id, b.function), {})
            block = self.registers.setdefault(b.unit_id, {3: {}, 4: {}})[b.function]
            for a in range(b.address, b.address + b.words):
                if a in owner:
                    other = self.points[owner[a]].ref.id
                    raise ValueError(f"point {ref.id}: register {b.function}/{a} of unit {b.unit_id} is also used by {other}")
                owner[a] = len(self.points)
                block[a] = 0
            self.points.append(_Point(ref, index, by_id[ref.device_id]))
        self.unit_ids = sorted(self.registers)
        self.server: RegisterServer | None = None

    async def _on_request(self, unit: int, fc: int, address: int, count: int) -> ExcCodes | None:
        """The park's faults on the points a request touches: silence, a late answer, an exception."""
        owner = self.owner.get((unit, fc))
        if owner is None:  # coils / discrete inputs, or a function without points on this unit
            return None
        tick = self.current_tick()
        touched = {owner[a] for a in range(address, address + count) if a in owner}
        active = self.faults.active
        for i in touched:
            if active(FaultKind.silent, self.points[i].ref.id, tick):
                raise NoAnswer
        # past the device's timeout, so the collector sees a timeout and not a slow answer
        delays = [1.5 * self.points[i].device.timeout_s + 0.25 for i in touched
                  if active(FaultKind.modbus_timeout, self.points[i].ref.id, tick)]
        if delays:
            await asyncio.sleep(max(delays))
        for kind, code in EXCEPTION_FAULTS.items():
            if any(active(kind, self.points[i].ref.id, tick) for i in touched):
                return code
        return None

    def refresh(self, engine: ValueSource, tick: int, emit: EmissionSink | None = None) -> None:
        """Encode every point's wire value at ``tick`` into the registers.

        Values go to the emission log as served ("protocol": "modbus"), except for points
        that cannot be read at this tick (exception or silence faults).
        """
        records = []
        ts_ms = engine.ts_ms(tick)
        for p in self.points:
            b = p.ref.point.modbus
            assert b is not None
            canonical = float(engine.values[p.index])
            wire = codec.to_wire(p.ref, canonical)
            block = self.registers[b.unit_id][b.function]
            for offset, value in enumerate(codec.encode_registers(wire, b)):
                block[b.address + offset] = value
            if emit is not None and emit.enabled and self.faults.first_active(UNREADABLE, p.ref.id, tick) is None:
                unwrapped = canonical if engine.is_counter[p.index] else None
                records.append(value_record("modbus", p.ref.id, ts_ms, codec.wire_to_canonical(p.ref, wire), wire, unwrapped))
        if emit is not None:
            emit.write(records)

    async def start(self, engine: ValueSource) -> None:
        self.refresh(engine, max(engine.tick, 0))
        self.server = RegisterServer(self.registers, host=self.host, port=self.port, record=False, gateway=True,
                                     fault_hook=self._on_request)
        await self.server.start()
        log.info("Modbus TCP server at %s:%d, unit ids %s, %d points", self.host, self.port, self.unit_ids, len(self.points))

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop()


async def _serve(port: int, units: int, count: int) -> None:
    server = RegisterServer(uniform_registers(units, count, 7), port=port, record=False)
    await server.start()
    print(f"listening on 127.0.0.1:{port} with units 1..{units}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="a Modbus TCP device with uniform registers (the benchmarks)")
    parser.add_argument("--port", type=int, default=15020)
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--registers", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.units, args.registers))


if __name__ == "__main__":
    main()
