"""The Modbus TCP collector plugin (polling through pymodbus, docs/architecture.md)."""

from __future__ import annotations

from lingtan.park.model import Protocol
from lingtan.settings import Settings
from lingtan_collectors.common.simulation import EmissionSink, FaultSource, ParkSimContext, ValueSource
from lingtan_collectors.modbus.collector import run_modbus
from lingtan_collectors.modbus.model import ModbusDevice
from lingtan_collectors.modbus.simulator import ModbusSimServer, RegisterServer
from lingtan_collectors.modbus.telegraf import native_scale, telegraf_inputs
from lingtan_collectors.plugin import CollectorPlugin


def park_server_key(device: ModbusDevice, settings: Settings) -> tuple[str, int]:
    return device.host or settings.modbus_host, device.port or settings.modbus_port


class ParkServer:
    """The park simulator's Modbus TCP gateway at one host and port."""

    def __init__(self, where: tuple[str, int], devices: list[ModbusDevice], context: ParkSimContext) -> None:
        self.server = ModbusSimServer(where[0], where[1], devices, context.refs, context.faults, context.current_tick)

    async def start(self, engine: ValueSource) -> None:
        await self.server.start(engine)

    async def publish(self, engine: ValueSource, faults: FaultSource, tick: int, emit: EmissionSink) -> None:
        self.server.refresh(engine, tick, emit)  # the faults are consulted per request, not per tick

    async def stop(self) -> None:
        await self.server.stop()

    def describe(self) -> str:
        return f"modbus {self.server.host}:{self.server.port} (units {self.server.unit_ids})"


PLUGIN = CollectorPlugin(Protocol.modbus, ModbusDevice, run_modbus, telegraf_inputs, RegisterServer,
                         park_server_key=park_server_key, park_server=ParkServer, telegraf_converts=native_scale)
