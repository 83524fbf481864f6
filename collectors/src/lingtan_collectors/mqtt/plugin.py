"""The MQTT collector plugin (paho-mqtt, QoS 1, persistent session, docs/architecture.md)."""

from __future__ import annotations

import asyncio
import logging

from lingtan.park.model import Protocol
from lingtan.settings import Settings
from lingtan_collectors.common.simulation import EmissionSink, FaultSource, ParkSimContext, ValueSource
from lingtan_collectors.mqtt.collector import run_mqtt
from lingtan_collectors.mqtt.model import MqttDevice
from lingtan_collectors.mqtt.simulator import MqttSimPublisher
from lingtan_collectors.mqtt.telegraf import telegraf_inputs
from lingtan_collectors.plugin import CollectorPlugin

log = logging.getLogger(__name__)


def park_server_key(device: MqttDevice, settings: Settings) -> tuple[str, int]:
    return device.host or settings.mqtt_host, device.port or settings.mqtt_port


class ParkServer:
    """The park simulator's MQTT publisher to one broker."""

    def __init__(self, where: tuple[str, int], devices: list[MqttDevice], context: ParkSimContext) -> None:
        settings = context.settings
        self.connect_timeout_s = context.connect_timeout_s
        self.publisher = MqttSimPublisher(
            where[0], where[1], devices, context.refs, context.emit,
            client_id=f"lingtan-sim-{context.park_id}-{context.index}",
            username=settings.mqtt_username, password=settings.mqtt_password,
        )

    async def start(self, engine: ValueSource) -> None:
        p = self.publisher
        p.start()
        if not await asyncio.to_thread(p.wait_connected, self.connect_timeout_s):
            log.warning("MQTT broker %s:%d not reachable yet; publishing starts once it is", p.host, p.port)

    async def publish(self, engine: ValueSource, faults: FaultSource, tick: int, emit: EmissionSink) -> None:
        self.publisher.publish(engine, faults, tick)  # acknowledged values are logged by the publisher

    async def stop(self) -> None:
        await asyncio.to_thread(self.publisher.stop)

    def describe(self) -> str:
        return f"mqtt {self.publisher.host}:{self.publisher.port} ({len(self.publisher.messages)} topics)"


PLUGIN = CollectorPlugin(Protocol.mqtt, MqttDevice, run_mqtt, telegraf_inputs, MqttSimPublisher,
                         park_server_key=park_server_key, park_server=ParkServer, blocking=True)
