"""The OPC UA collector plugin (subscriptions through asyncua, docs/architecture.md)."""

from __future__ import annotations

from lingtan.park.model import Protocol
from lingtan.settings import Settings
from lingtan_collectors.common.simulation import EmissionSink, FaultSource, ParkSimContext, ValueSource
from lingtan_collectors.opcua.collector import run_opcua
from lingtan_collectors.opcua.model import OpcUaDevice
from lingtan_collectors.opcua.simulator import OpcUaSimServer
from lingtan_collectors.opcua.telegraf import telegraf_inputs
from lingtan_collectors.plugin import CollectorPlugin


def park_server_key(device: OpcUaDevice, settings: Settings) -> str:
    return device.endpoint or settings.opcua_endpoint


class ParkServer:
    """The park simulator's OPC UA server at one endpoint."""

    def __init__(self, endpoint: str, devices: list[OpcUaDevice], context: ParkSimContext) -> None:
        self.server = OpcUaSimServer(endpoint, devices, context.refs, history_count=context.history_count)

    async def start(self, engine: ValueSource) -> None:
        await self.server.start()

    async def publish(self, engine: ValueSource, faults: FaultSource, tick: int, emit: EmissionSink) -> None:
        await self.server.publish(engine, faults, tick, emit)

    async def stop(self) -> None:
        await self.server.stop()

    def describe(self) -> str:
        return f"opcua {self.server.endpoint} ({len(self.server.vars)} variables)"


PLUGIN = CollectorPlugin(Protocol.opcua, OpcUaDevice, run_opcua, telegraf_inputs, OpcUaSimServer,
                         park_server_key=park_server_key, park_server=ParkServer)
