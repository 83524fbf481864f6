"""Modbus TCP gateway for the park's Modbus devices (pymodbus 3.16 SimDevice).

One :class:`pymodbus.server.ModbusTcpServer` per host:port, one ``SimDevice`` per unit id
(slave address behind the gateway). Each SimDevice uses *separate* register blocks
(the 4-tuple form of ``SimDevice.simdata``), so holding registers (fc 3) and input
registers (fc 4) at the same address are different registers, as on a real meter. Every
point occupies its registers with its data type, word order and byte order; other
addresses answer exception 02 (ILLEGAL DATA ADDRESS). Registers are read-only.
Coils and discrete inputs are not used by the park model; pymodbus needs a block for
each, so a unit answers 16 read-only ``False`` coils/inputs at address 0.

Values are refreshed every tick into a mirror; the SimDevice ``action`` hook, called on
every request, copies the mirror into the registers being read and applies faults:
an exception code, a response delayed past the device's ``timeout_s``, or no response at
all (``silent``). Unknown unit ids answer exception 0B (GATEWAY TARGET FAILED TO RESPOND).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from lingtan.park.index import PointRef
from lingtan.park.model import ModbusDevice
from lingtan_tools.simulate import codec
from lingtan_tools.simulate.emitlog import EmissionLog, value_record
from lingtan_tools.simulate.engine import Engine
from lingtan_tools.simulate.faults import FaultBook, FaultKind

log = logging.getLogger(__name__)

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

    def callback_new_connection(self) -> ServerRequestHandler:
        return _RequestHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


@dataclass
class _Block:
    """Registers of one function code of one unit: address -> value and address -> point."""

    regs: dict[int, int] = field(default_factory=dict)
    owner: dict[int, int] = field(default_factory=dict)  # address -> index into ModbusSimServer.points


@dataclass
class _Point:
    ref: PointRef
    index: int  # position in Engine.refs
    device: ModbusDevice


class ModbusSimServer:
    """Serves the Modbus points of the devices that share one host:port.

    Parameters
    ----------
    host, port : str, int
        Where to listen.
    devices : list of ModbusDevice
        Devices (gateways) served on this socket; their unit ids must not overlap.
    refs : list of PointRef
        All points of the park.
    faults : FaultBook
        Fault state, consulted on every request.
    current_tick : callable
        Returns the simulator's current tick.
    """

    def __init__(
        self,
        host: str,
        port: int,
        devices: list[ModbusDevice],
        refs: list[PointRef],
        faults: FaultBook,
        current_tick: Callable[[], int],
    ) -> None:
        self.host = host
        self.port = port
        self.faults = faults
        self.current_tick = current_tick
        by_id = {d.id: d for d in devices}
        self.points: list[_Point] = []
        self.blocks: dict[tuple[int, int], _Block] = {}
        unit_device: dict[int, str] = {}
        for index, ref in enumerate(refs):
            b = ref.point.modbus
            if ref.device_id not in by_id or b is None:
                continue
            if unit_device.setdefault(b.unit_id, ref.device_id) != ref.device_id:
                raise ValueError(f"unit id {b.unit_id} is used by devices {unit_device[b.unit_id]} and {ref.device_id} on {host}:{port}")
            block = self.blocks.setdefault((b.unit_id, b.function), _Block())
            for a in range(b.address, b.address + b.words):
                if a in block.owner:
                    other = self.points[block.owner[a]].ref.id
                    raise ValueError(f"point {ref.id}: register {b.function}/{a} of unit {b.unit_id} is also used by {other}")
                block.owner[a] = len(self.points)
                block.regs[a] = 0
            self.points.append(_Point(ref, index, by_id[ref.device_id]))
        self.unit_ids = sorted({unit for unit, _fc in self.blocks})
        self.server: _TcpServer | None = None

    # ------------------------------------------------------------------ build

    def _simdata(self, unit: int, fc: int) -> list[SimData]:
        block = self.blocks.get((unit, fc))
        if block is None:
            return [SimData(address=0, datatype=DataType.INVALID)]
        out = []
        for p in self.points:
            b = p.ref.point.modbus
            assert b is not None
            if b.unit_id == unit and b.function == fc:
                values = [block.regs[a] for a in range(b.address, b.address + b.words)]
                out.append(SimData(address=b.address, values=values, datatype=DataType.REGISTERS, readonly=True))
        return out

    def sim_devices(self) -> list[SimDevice]:
        """One SimDevice per unit id with separate coil, discrete-input, holding and input blocks."""
        devices = []
        for unit in self.unit_ids:
            bits = [SimData(address=0, values=[False] * 16, datatype=DataType.BITS, readonly=True)]
            blocks = (bits, list(bits), self._simdata(unit, 3), self._simdata(unit, 4))
            devices.append(SimDevice(id=unit, simdata=blocks, action=self._make_action(unit)))
        return devices

    def _make_action(self, unit: int) -> Callable:
        async def action(
            function_code: int, start_address: int, address: int, count: int,
            current_registers: list[int], set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            return await self._on_request(unit, function_code, start_address, address, count, current_registers)

        return action

    async def _on_request(self, unit: int, fc: int, start_address: int, address: int, count: int, registers: list[int]) -> ExcCodes | None:
        block = self.blocks.get((unit, fc))
        if block is None:  # coils / discrete inputs
            return None
        tick = self.current_tick()
        touched = {block.owner[a] for a in range(address, address + count) if a in block.owner}
        active = self.faults.active
        for i in touched:
            if active(FaultKind.silent, self.points[i].ref.id, tick):
                raise NoAnswer
        delays = [1.5 * self.points[i].device.timeout_s + 0.25 for i in touched
                  if active(FaultKind.modbus_timeout, self.points[i].ref.id, tick)]
        if delays:
            await asyncio.sleep(max(delays))
        for kind, code in EXCEPTION_FAULTS.items():
            if any(active(kind, self.points[i].ref.id, tick) for i in touched):
                return code
        for a in range(address, address + count):
            registers[a - start_address] = block.regs[a]
        return None

    # ------------------------------------------------------------------ run

    def refresh(self, engine: Engine, tick: int, emit: EmissionLog | None = None) -> None:
        """Encode every point's wire value at ``tick`` into the register mirror.

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
            regs = codec.encode_registers(wire, b)
            block = self.blocks[(b.unit_id, b.function)]
            for offset, value in enumerate(regs):
                block.regs[b.address + offset] = value
            if emit is not None and emit.enabled and self.faults.first_active(UNREADABLE, p.ref.id, tick) is None:
                unwrapped = canonical if engine.is_counter[p.index] else None
                records.append(value_record("modbus", p.ref.id, ts_ms, codec.wire_to_canonical(p.ref, wire), wire, unwrapped))
        if emit is not None:
            emit.write(records)

    async def start(self, engine: Engine) -> None:
        self.refresh(engine, max(engine.tick, 0))
        self.server = _TcpServer(self.sim_devices(), address=(self.host, self.port))
        self.server.unit_ids = frozenset(self.unit_ids)
        await self.server.serve_forever(background=True)
        log.info("Modbus TCP server at %s:%d, unit ids %s, %d points", self.host, self.port, self.unit_ids, len(self.points))

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.shutdown()
