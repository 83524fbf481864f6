"""MQTT collector: QoS 1, persistent session, acknowledge only what the sink has made durable.

One paho-mqtt client per MQTT device of the park, client id ``lingtan-<park>-<device>``,
MQTT 3.1.1 with ``clean_session=False`` (a persistent session: the broker keeps the
subscriptions and queues QoS 1 messages while the collector is away; README.md explains why
not MQTT v5), subscribed with QoS 1 to every exact topic its points are bound to. Each message is decoded
by :class:`~lingtan_collectors.mqtt.payload.PayloadDecoder`; the lines of consecutive messages
are collected and handed to ``runtime.submit`` (which returns once they are in the sink's
write-ahead log), and only then is each message acknowledged (``manual_ack``). A batch ends when
the socket has nothing more to read, at :data:`BATCH_MAX_MESSAGES`, or after :data:`BATCH_MAX_AGE_S`;
so a process killed between receipt and submit has acknowledged nothing of it, and the broker
sends it again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.mqtt.client import BufferedClient
from lingtan_collectors.mqtt.model import MqttDevice
from lingtan_collectors.mqtt.payload import PayloadDecoder, group_by_topic

log = logging.getLogger(__name__)

#: at most this many messages per submit (a batch also ends whenever the socket runs dry)
BATCH_MAX_MESSAGES = 2000
#: a batch that is not complete by then is submitted and acknowledged anyway (e.g. when the last
#: packet of a burst was a SUBACK or PINGRESP rather than a PUBLISH)
BATCH_MAX_AGE_S = 0.05
KEEPALIVE_S = 30
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
LOG_INTERVAL_S = 60.0


@dataclass
class MqttStats:
    """Counters of one device's client (exposed for tests, benchmarks and logs)."""

    messages: int = 0
    redelivered: int = 0
    acked: int = 0
    batches: int = 0
    connects: int = 0
    session_present: bool = False
    connected: bool = False
    subscribed: bool = False  # the broker confirmed every subscription of the current connection
    last_error: str = ""


class MqttDeviceCollector:
    """The MQTT client of one device: subscribe, decode, submit, then acknowledge."""

    def __init__(self, runtime: CollectorRuntime, device: MqttDevice, *, batch_max: int = BATCH_MAX_MESSAGES):
        self.runtime = runtime
        self.device = device
        settings = runtime.settings
        self.host = device.host or settings.mqtt_host
        self.port = device.port or settings.mqtt_port
        self.client_id = f"lingtan-{runtime.park.park.id}-{device.id}"
        self.topics = group_by_topic(runtime.points[device.id])
        self.decoder = PayloadDecoder(runtime.processors[device.id], device.timestamp_path, self.topics)
        self.batch_max = batch_max
        self.stats = MqttStats()
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._acks: list[tuple[int, int]] = []
        self._first_at = 0.0  # monotonic time of the oldest message in the batch
        self._stopped = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name=f"mqtt-{device.id}-flush", daemon=True)
        self._last_log = -1e18
        self.client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                     protocol=mqtt.MQTTv311, clean_session=False, manual_ack=True)
        if settings.mqtt_username:
            self.client.username_pw_set(settings.mqtt_username, settings.mqtt_password or None)
        self.client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self._sub_topics: dict[int, list[str]] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect in the background (retrying with backoff until the broker answers)."""
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()
        self._flusher.start()
        log.info("MQTT %s: connecting to %s:%d as %s (%d topics)", self.device.id, self.host, self.port,
                 self.client_id, len(self.topics))

    def stop(self) -> None:
        """Submit and acknowledge what was received, disconnect (the session stays on the broker)."""
        self._stopped.set()
        if self._flusher.is_alive():
            self._flusher.join()
        with self._lock:
            self._flush(ack=self.stats.connected)
        self.client.disconnect()
        self.client.loop_stop()
        self.stats.connected = False

    # ------------------------------------------------------------------ paho callbacks (network thread)
    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, _props: Properties | None) -> None:
        if reason.is_failure:
            self._warn("MQTT %s: broker %s:%d refused the connection: %s", self.device.id, self.host, self.port,
                       reason)
            self.stats.last_error = f"connection refused: {reason}"
            return
        self.stats.connects += 1
        self.stats.connected = True
        self.stats.session_present = bool(flags.session_present)
        # subscribing again is harmless when the session survived and required when it did not
        topics = list(self.topics)
        _rc, mid = client.subscribe([(topic, 1) for topic in topics])
        if mid is not None:
            self._sub_topics[mid] = topics
        log.info("MQTT %s: connected to %s:%d (session present: %s)", self.device.id, self.host, self.port,
                 flags.session_present)
        self._last_log = -1e18

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, mid: int, reasons: list[ReasonCode],
                      _props: Properties | None) -> None:
        topics = self._sub_topics.pop(mid, [])
        refused = [t for t, r in zip(topics, reasons, strict=False) if r.is_failure]
        self.stats.subscribed = not refused
        if refused:
            self.stats.last_error = f"subscription refused for {len(refused)} topic(s), e.g. {refused[0]}"
            log.error("MQTT %s: the broker refused the subscription to %d topic(s): %s", self.device.id,
                      len(refused), ", ".join(refused[:5]))

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self.stats.last_error = f"cannot connect to {self.host}:{self.port}"
        self._warn("MQTT %s: cannot connect to %s:%d; retrying with backoff (up to %ds)", self.device.id,
                   self.host, self.port, RECONNECT_MAX_S)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, _props: Properties | None) -> None:
        self.stats.connected = self.stats.subscribed = False
        with self._lock:
            # the broker re-sends what we did not acknowledge; keep the lines anyway (same series
            # and timestamp overwrite themselves), the acknowledgements belong to the old connection
            self._flush(ack=False)
            self._acks = []  # message ids of the old connection; the broker re-sends those messages
        if reason.is_failure:
            self.stats.last_error = f"disconnected: {reason}"
            self._warn("MQTT %s: lost the broker %s:%d (%s); reconnecting with backoff", self.device.id,
                       self.host, self.port, reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            lines = self.decoder.decode(msg.topic, msg.payload, time.time_ns())
        except Exception as exc:  # a bug, not bad data: record it instead of killing paho's thread
            log.exception("MQTT %s: cannot decode a message on %s", self.device.id, msg.topic)
            binding = self.topics.get(msg.topic)
            lines = self.decoder.processor.device_event(
                "parse_error", time.time_ns(), f"topic {msg.topic}: decoder failed: {exc!r}",
                binding.point_ids if binding else None)
        with self._lock:
            self.stats.messages += 1
            self.stats.redelivered += msg.dup
            if not self._acks and not self._lines:
                self._first_at = time.monotonic()
            self._lines.extend(lines)
            if msg.qos > 0:
                self._acks.append((msg.mid, msg.qos))
            if len(self._acks) >= self.batch_max or not self.client.more_to_read():
                self._flush(ack=True)

    # ------------------------------------------------------------------ batching
    def _flush_loop(self) -> None:
        """Submit and acknowledge a batch that waited longer than BATCH_MAX_AGE_S."""
        while not self._stopped.wait(BATCH_MAX_AGE_S / 2):
            with self._lock:
                if (self._acks or self._lines) and time.monotonic() - self._first_at >= BATCH_MAX_AGE_S:
                    self._flush(ack=self.stats.connected)

    def _flush(self, ack: bool) -> None:
        """Submit the collected lines (durably), then acknowledge their messages. Lock held."""
        lines, acks = self._lines, self._acks
        if lines:
            try:
                self.runtime.submit(lines)
            except Exception as exc:
                # not durable, so not acknowledged: keep the batch and try again on the next flush;
                # meanwhile the broker's in-flight window fills up and it stops sending (back-pressure)
                self.stats.last_error = f"submit failed: {exc!r}"
                self._warn("MQTT %s: cannot store %d lines (%r); holding %d messages unacknowledged",
                           self.device.id, len(lines), exc, len(acks))
                return
            self.stats.batches += 1
        self._lines, self._acks = [], []
        if ack:
            self.client.puback_many([mid for mid, qos in acks if qos == 1])
            for mid, qos in acks:
                if qos != 1:
                    self.client.ack(mid, qos)
            self.stats.acked += len(acks)

    def _warn(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_log >= LOG_INTERVAL_S:
            self._last_log = now
            log.warning(msg, *args)


class MqttCollector:
    """The clients of every MQTT device of one collector process."""

    def __init__(self, runtime: CollectorRuntime, *, batch_max: int = BATCH_MAX_MESSAGES):
        self.runtime = runtime
        self.devices = [MqttDeviceCollector(runtime, d, batch_max=batch_max)
                        for d in runtime.devices if isinstance(d, MqttDevice)]

    def run(self, stop: threading.Event) -> None:
        """Collect until ``stop`` is set; then submit and acknowledge what was received and disconnect."""
        if not self.devices:
            log.warning("no MQTT devices in the park model; nothing to collect")
        for dev in self.devices:
            dev.start()
        try:
            stop.wait()
        finally:
            for dev in self.devices:
                dev.stop()


def run_mqtt(runtime: CollectorRuntime, stop: threading.Event) -> None:
    """Collect every MQTT device of ``runtime`` until ``stop`` is set (blocking).

    ``runtime`` must already be started (its sink running); this function only submits lines.
    """
    MqttCollector(runtime).run(stop)


def main(runtime: CollectorRuntime) -> None:
    """Blocking entry point for the CLI: start ``runtime``, collect until SIGTERM/SIGINT, stop it.

    Pass a runtime that has not been started; it is stopped (sink flushed) before returning.
    """
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    runtime.start()
    try:
        run_mqtt(runtime, stop)
    finally:
        runtime.stop()
