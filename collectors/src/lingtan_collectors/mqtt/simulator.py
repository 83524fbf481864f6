"""MQTT publisher for the park's MQTT devices (paho-mqtt 2.2, QoS 1).

Every tick, one JSON message per meter topic: the points' raw values at their
``json_path`` and the simulated time in epoch milliseconds at the device's
``timestamp_path``, e.g. ``{"ts": 1750204800000, "energy": {"total": 1234.5}, "power": {"value": 87.2}}``.
One paho client (with its own network thread) per device broker. While the broker is
unreachable messages are dropped, not queued, as a meter without a local buffer would;
paho reconnects in the background. Values go to the emission log when the broker
acknowledges the message (PUBACK).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from lingtan.park.index import PointRef
from lingtan_collectors.common import codec
from lingtan_collectors.common.simulation import (
    EmissionSink,
    FaultKind,
    FaultSource,
    ValueSource,
    value_record,
)
from lingtan_collectors.mqtt.model import MqttDevice

log = logging.getLogger(__name__)


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``doc[a][b][c] = value`` for ``path = "a.b.c"``, creating objects on the way."""
    keys = path.split(".")
    for key in keys[:-1]:
        child = doc.get(key)
        if not isinstance(child, dict):
            child = doc[key] = {}
        doc = child
    doc[keys[-1]] = value


@dataclass
class _Message:
    device: MqttDevice
    topic: str
    points: list[tuple[int, PointRef]]  # (index into ValueSource.refs, ref)


class MqttSimPublisher:
    """Publishes the MQTT points of the devices that share one broker.

    Parameters
    ----------
    host, port : str, int
        Broker address.
    devices : list of MqttDevice
        Devices whose points are published through this connection.
    refs : list of PointRef
        All points of the park.
    emit : EmissionSink
        Where acknowledged values are logged.
    client_id : str
        MQTT client id.
    username, password : str
        Broker credentials (empty = anonymous).
    """

    def __init__(
        self,
        host: str,
        port: int,
        devices: list[MqttDevice],
        refs: list[PointRef],
        emit: EmissionSink,
        *,
        client_id: str = "lingtan-simulator",
        username: str = "",
        password: str = "",
    ) -> None:
        self.host = host
        self.port = port
        self.emit = emit
        by_id = {d.id: d for d in devices}
        messages: dict[tuple[str, str], _Message] = {}
        for index, ref in enumerate(refs):
            b = ref.point.mqtt
            if ref.device_id not in by_id or b is None:
                continue
            key = (ref.device_id, b.topic)
            msg = messages.setdefault(key, _Message(by_id[ref.device_id], b.topic, []))
            msg.points.append((index, ref))
        self.messages = list(messages.values())
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if username:
            self.client.username_pw_set(username, password or None)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[int, list[dict[str, Any]]] = {}
        self._acked_early: set[int] = set()
        self.published = 0
        self.acked = 0

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason_code)
            return
        self.connected.set()
        log.info("MQTT connected to %s:%d", self.host, self.port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.connected.clear()  # paho resends unacknowledged QoS 1 messages after reconnecting

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        with self._lock:
            self.acked += 1
            records = self._pending.pop(mid, None)
            if records is None:
                self._acked_early.add(mid)
                return
        self.emit.write(records)

    # ------------------------------------------------------------------ run

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def build(self, msg: _Message, engine: ValueSource, faults: FaultSource, tick: int) -> tuple[bytes, list[dict[str, Any]]] | None:
        """Payload of one message at ``tick`` and the values it carries (None: the meter is silent)."""
        ts_ms = engine.ts_ms(tick)
        doc: dict[str, Any] = {}
        set_path(doc, msg.device.timestamp_path, ts_ms)
        records = []
        broken: FaultKind | None = None
        for index, ref in msg.points:
            pid = ref.id
            if faults.active(FaultKind.silent, pid, tick):
                return None
            if faults.active(FaultKind.mqtt_missing_field, pid, tick):
                continue
            broken = broken or faults.first_active((FaultKind.mqtt_not_json, FaultKind.mqtt_truncated), pid, tick)
            assert ref.point.mqtt is not None
            canonical = float(engine.values[index])
            wire = codec.to_wire(ref, canonical)
            set_path(doc, ref.point.mqtt.json_path, wire)
            unwrapped = canonical if engine.is_counter[index] else None
            records.append(value_record("mqtt", pid, ts_ms, codec.wire_to_canonical(ref, wire), wire, unwrapped))
        text = json.dumps(doc, separators=(",", ":"))
        if broken is FaultKind.mqtt_not_json:
            return f"ERROR sensor {msg.topic.rsplit('/', 1)[-1]} offline at {ts_ms}".encode(), []
        if broken is FaultKind.mqtt_truncated:
            return text[: len(text) // 2].encode(), []
        return text.encode(), records

    def publish(self, engine: ValueSource, faults: FaultSource, tick: int) -> int:
        """Publish this tick's messages (QoS 1); returns how many were handed to paho."""
        if not self.connected.is_set():
            return 0
        sent = 0
        for msg in self.messages:
            built = self.build(msg, engine, faults, tick)
            if built is None:
                continue
            payload, records = built
            info = self.client.publish(msg.topic, payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued, sent on reconnect
                continue
            sent += 1
            with self._lock:
                early = info.mid in self._acked_early
                if early:
                    self._acked_early.discard(info.mid)
                else:
                    self._pending[info.mid] = records
            if early:
                self.emit.write(records)
        self.published += sent
        return sent

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
