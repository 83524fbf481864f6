"""MQTT collector against a real mosquitto and a real influxd.

Golden cases live in ``testcases/<case>/``: ``park.yaml`` (model fragment; ``sample.yaml`` when
absent), ``input.yaml`` (messages published in order with QoS 1) and ``expected.lp`` (every line
that must end up in InfluxDB, ``collector_stats`` aside). A timestamp written ``NOW`` stands for
the time of receipt (records of messages without a usable timestamp): it must fall within the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml

from lingtan.influxdb import InfluxClient
from lingtan.park.index import points_by_device
from lingtan.park.loader import load_park
from lingtan.park.model import Park, Protocol
from lingtan.settings import DEMO_PARK, Settings
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.mqtt.collector import MqttCollector
from lingtan_collectors.mqtt.payload import epoch_ms_to_ns, group_by_topic
from tests.golden import influx_lines

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "sample.yaml"
CASES = sorted(p.name for p in (HERE / "testcases").iterdir() if (p / "input.yaml").exists())
OFFICE, GAS = "lingtan/sample/m-office", "lingtan/sample/m-canteen-gas"
T0_MS = 1714521600000


# --------------------------------------------------------------------------- InfluxDB helpers








def point_values(client: InfluxClient, measurement: str = "electricity") -> dict[str, list[tuple[int, float]]]:
    """point -> [(ts, value)] in time order."""
    out: dict[str, list[tuple[int, float]]] = {}
    for s in client.series(f'SELECT * FROM "{measurement}" GROUP BY "point"', epoch="ns"):
        for row in s["values"]:
            rec = dict(zip(s["columns"], row, strict=True))
            value = rec["total"] if rec.get("total") is not None else rec["rate"]
            out.setdefault(s["tags"]["point"], []).append((rec["time"], value))
    return out


# --------------------------------------------------------------------------- MQTT helpers


def client_id(park: Park) -> str:
    return f"lingtan-{park.park.id}-{park.devices[0].id}"


def purge_session(port: int, cid: str) -> None:
    """Discard the broker's persistent session of ``cid`` (connect with a clean session, disconnect)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
    c.connect("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + 5
    while not c.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()


class Publisher:
    """A device: publishes with QoS 1 and waits for the broker's PUBACK of each message."""

    def __init__(self, port: int):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def reading(self, topic: str, i: int) -> None:
        """Message ``i``: ts = T0 + i s, total = 100 + i, rate = i."""
        self.send(topic, json.dumps({"ts": T0_MS + 1000 * i, "energy": {"total": 100.0 + i}, "power": {"value": i}}))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def make_runtime(park: Park, state_dir: Path, influx: InfluxClient, port: int) -> CollectorRuntime:
    settings = Settings(state_dir=state_dir, influx_url=influx.url, influx_db=influx.database,
                        influx_user=influx.username, influx_password=influx.password, mqtt_port=port,
                        write_flush_interval_s=0.05)
    return CollectorRuntime("mqtt", Protocol.mqtt, park, settings, stats_interval_s=3600)


class RunningCollector:
    """The MQTT collector in a thread with its own runtime (sink, write-ahead log)."""

    def __init__(self, park: Park, state_dir: Path, influx: InfluxClient, port: int, *, wait_subscribed: bool = True):
        self.runtime = make_runtime(park, state_dir, influx, port).start()
        self.collector = MqttCollector(self.runtime)
        self.stats = self.collector.devices[0].stats
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.collector.run, args=(self.stop_event,), daemon=True)
        self.thread.start()
        if wait_subscribed:
            wait_until(lambda: self.stats.subscribed, what="subscription")

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(15)
        self.runtime.stop()


# --------------------------------------------------------------------------- unit checks


def test_sample_config_is_a_valid_park() -> None:
    park = load_park(SAMPLE)
    topics = group_by_topic(points_by_device(park)["iot-mqtt"])
    assert list(topics) == [OFFICE, GAS]
    assert topics[OFFICE].point_ids == ["m-office.total", "m-office.rate"]


def test_demo_park_topics() -> None:
    """The demo park: 82 MQTT points, two per meter topic, one client."""
    park = load_park(DEMO_PARK)
    topics = group_by_topic(points_by_device(park)["iot-mqtt"])
    assert sum(len(t.points) for t in topics.values()) == 82 and len(topics) == 41


def test_epoch_ms_is_exact() -> None:
    assert epoch_ms_to_ns(1714521600123) == 1714521600123000000
    assert epoch_ms_to_ns(1714521600123.5) == 1714521600123500000
    assert epoch_ms_to_ns(1714521600) is None  # seconds
    assert epoch_ms_to_ns(True) is None and epoch_ms_to_ns("1714521600123") is None
    assert epoch_ms_to_ns(float("nan")) is None


# --------------------------------------------------------------------------- golden cases


def _payload(msg: dict) -> bytes:
    if "json" in msg:
        return json.dumps(msg["json"]).encode()
    if "hex" in msg:
        return bytes.fromhex(msg["hex"])
    return str(msg["raw"]).encode()


def _match(expected: list[str], actual: list[str], t_from: int, t_to: int) -> list[str]:
    """Problems when ``actual`` differs from ``expected`` (``NOW`` = any time in [t_from, t_to])."""
    rest = list(actual)
    problems = []
    for want in expected:
        if want.endswith(" NOW"):
            prefix = want[: -len("NOW")]
            hit = next((a for a in rest if a.startswith(prefix) and t_from <= int(a[len(prefix):]) <= t_to), None)
        else:
            hit = want if want in rest else None
        if hit is None:
            problems.append(f"missing: {want}")
        else:
            rest.remove(hit)
    problems += [f"unexpected: {a}" for a in rest]
    return problems


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, mosquitto: Any, influx_db: InfluxClient, tmp_path: Path) -> None:
    """Model fragment + published payloads -> exactly the expected lines in InfluxDB."""
    cdir = HERE / "testcases" / case
    park = load_park(cdir / "park.yaml" if (cdir / "park.yaml").exists() else SAMPLE)
    messages = yaml.safe_load((cdir / "input.yaml").read_text())["messages"]
    purge_session(mosquitto.port, client_id(park))
    t_from = time.time_ns()
    run = RunningCollector(park, tmp_path, influx_db, mosquitto.port)
    pub = Publisher(mosquitto.port)
    try:
        for msg in messages:
            pub.send(msg["topic"], _payload(msg))
        wait_until(lambda: run.stats.acked >= len(messages), what=f"{len(messages)} messages acknowledged")
        assert run.stats.messages == len(messages)
    finally:
        pub.close()
        run.stop()
        purge_session(mosquitto.port, client_id(park))
    expected = [ln for ln in (cdir / "expected.lp").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    actual = influx_lines(influx_db)
    problems = _match(expected, actual, t_from, time.time_ns())
    assert not problems, "\n".join(problems) + "\nactual lines:\n" + "\n".join(actual)


# --------------------------------------------------------------------------- broker restart


def test_broker_restart_loses_no_qos1_message(mosquitto: Any, influx_db: InfluxClient, tmp_path: Path) -> None:
    """Messages queued for the offline session survive a broker restart, and a running
    collector reconnects by itself and gets what was published after the restart."""
    park = load_park(SAMPLE)
    cid = client_id(park)
    purge_session(mosquitto.port, cid)
    run = RunningCollector(park, tmp_path, influx_db, mosquitto.port)
    try:
        pub = Publisher(mosquitto.port)
        for i in range(0, 10):
            pub.reading(OFFICE, i)
        wait_until(lambda: run.stats.acked >= 10, what="first 10")
        run.stop()  # collector away: the broker queues for its persistent session
        for i in range(10, 20):
            pub.reading(OFFICE, i)
        pub.close()
        try:
            mosquitto.instance.stop()
        finally:
            mosquitto.instance.start()
        pub = Publisher(mosquitto.port)
        for i in range(20, 30):
            pub.reading(OFFICE, i)
        run = RunningCollector(park, tmp_path, influx_db, mosquitto.port)
        wait_until(lambda: run.stats.acked >= 20, what="20 queued messages after the broker restart")
        assert run.stats.session_present

        # now the broker restarts under the running collector
        try:
            mosquitto.instance.stop()
        finally:
            mosquitto.instance.start()
        pub.close()
        pub = Publisher(mosquitto.port)
        for i in range(30, 40):
            pub.reading(OFFICE, i)
        pub.close()
        wait_until(lambda: run.stats.acked >= 30, timeout=20, what="reconnect and messages 30-39")
        assert run.stats.connects == 2
    finally:
        run.stop()
        purge_session(mosquitto.port, cid)
    values = point_values(influx_db)
    want = [(T0_MS * 10**6 + i * 10**9, 100.0 + i) for i in range(40)]
    assert values["m-office.total"] == want


def test_submit_failure_holds_acknowledgements(mosquitto: Any, influx_db: InfluxClient, tmp_path: Path) -> None:
    """While the sink cannot store lines (disk full), nothing is acknowledged; afterwards all is."""
    park = load_park(SAMPLE)
    purge_session(mosquitto.port, client_id(park))
    run = RunningCollector(park, tmp_path, influx_db, mosquitto.port)
    real_submit = run.runtime.submit
    failing = threading.Event()
    failing.set()

    def flaky_submit(lines: list[str]) -> None:
        if failing.is_set():
            raise OSError(28, "No space left on device")
        real_submit(lines)

    run.runtime.submit = flaky_submit  # type: ignore[method-assign]
    try:
        pub = Publisher(mosquitto.port)
        for i in range(30):
            pub.reading(OFFICE, i)
        pub.close()
        wait_until(lambda: run.stats.messages >= 30, what="30 messages received")
        time.sleep(0.3)
        assert run.stats.acked == 0 and "No space left" in run.stats.last_error
        failing.clear()
        wait_until(lambda: run.stats.acked >= 30, what="acknowledgements once the sink accepts again")
    finally:
        run.stop()
        purge_session(mosquitto.port, client_id(park))
    assert [v for _, v in point_values(influx_db)["m-office.total"]] == [100.0 + i for i in range(30)]


# --------------------------------------------------------------------------- crash between receive and ack

KILLABLE = """
import sys, threading, time
from pathlib import Path
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.mqtt.collector import MqttCollector
from lingtan.park.loader import load_park
from lingtan.park.model import Protocol
from lingtan.settings import Settings

park, state, url, db, user, pw, port, mode, marker = sys.argv[1:]
settings = Settings(state_dir=state, influx_url=url, influx_db=db, influx_user=user, influx_password=pw,
                    mqtt_port=int(port))
runtime = CollectorRuntime("mqtt", Protocol.mqtt, load_park(park), settings, stats_interval_s=3600).start()
collector = MqttCollector(runtime)
device = collector.devices[0]

def hang(*args):
    Path(marker).write_text(mode)
    time.sleep(3600)

if mode == "before_submit":  # the process dies after receiving, before the lines are durable
    runtime.submit = hang
else:  # "before_ack": the lines are in the write-ahead log, the acknowledgements not sent
    device.client.puback_many = hang
collector.run(threading.Event())
"""


@pytest.mark.parametrize("mode", ["before_submit", "before_ack"])
def test_sigkill_between_receive_and_ack_redelivers(mode: str, mosquitto: Any, influx_db: InfluxClient,
                                                    tmp_path: Path) -> None:
    """SIGKILL the collector after it received messages but before it acknowledged them: the
    broker delivers them again to the restarted collector and every value lands exactly once."""
    park = load_park(SAMPLE)
    cid = client_id(park)
    purge_session(mosquitto.port, cid)
    first = RunningCollector(park, tmp_path, influx_db, mosquitto.port)  # creates the persistent session
    first.stop()
    pub = Publisher(mosquitto.port)
    for i in range(50):
        pub.reading(OFFICE, i)
    pub.close()

    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    marker = tmp_path / "marker"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(SAMPLE), str(tmp_path), influx_db.url, influx_db.database,
         influx_db.username, influx_db.password, str(mosquitto.port), mode, str(marker)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: marker.exists() or proc.poll() is not None, timeout=20, what="the collector to hang")
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    second = RunningCollector(park, tmp_path, influx_db, mosquitto.port)  # same state dir: same WAL
    try:
        wait_until(lambda: second.stats.acked >= 50, timeout=20, what="redelivery of all 50 messages")
        assert second.stats.redelivered > 0  # the broker re-sent what the killed process had not acknowledged
    finally:
        second.stop()
        purge_session(mosquitto.port, cid)
    values = point_values(influx_db)
    assert values["m-office.total"] == [(T0_MS * 10**6 + i * 10**9, 100.0 + i) for i in range(50)]
    assert values["m-office.rate"] == [(T0_MS * 10**6 + i * 10**9, float(i)) for i in range(50)]


# --------------------------------------------------------------------------- the project's simulator


def test_demo_park_simulator_collector_restart_without_gaps(mosquitto: Any, influx_db: InfluxClient,
                                                             tmp_path: Path) -> None:
    """The simulator publishes the 82 demo MQTT points every tick; the collector stops for a few
    ticks and comes back: the broker queued the messages for its session, so no tick is missing."""
    from lingtan_tools.simulate.runner import start_in_thread

    park = load_park(DEMO_PARK)
    cid = client_id(park)
    purge_session(mosquitto.port, cid)
    tick_s = 0.2
    settings = Settings(state_dir=tmp_path / "sim", mqtt_port=mosquitto.port)
    run = RunningCollector(park, tmp_path, influx_db, mosquitto.port)
    emit_log = tmp_path / "emitted.jsonl"
    sim = start_in_thread(park, settings, seed=7, fault_rate=0.0, protocols={"mqtt"}, tick_s=tick_s,
                          emit_log=emit_log)
    try:
        sim.wait_ticks(5)
        run.stop()
        sim.wait_ticks(8)  # collector down: the broker queues for its persistent session
        run = RunningCollector(park, tmp_path, influx_db, mosquitto.port)
        last = sim.wait_ticks(5)
        last_ns = sim.call(lambda: sim.sim.engine.ts_ms(last)) * 1_000_000
        proc = run.runtime.processors["iot-mqtt"]
        # every message carries a counter, and the counter's last timestamp is tracked
        counters = [r.id for r in points_by_device(park)["iot-mqtt"] if r.point.kind.value == "counter"]
        assert len(counters) == 41
        wait_until(lambda: min(proc.last_raw(p)[1] for p in counters) >= last_ns, what=f"tick {last} on every topic")
    finally:
        sim.stop()
        run.stop()
        purge_session(mosquitto.port, cid)
    # what the simulator published (a loaded machine may make it skip ticks; those were never sent)
    published: dict[str, set[int]] = {}
    for raw in emit_log.read_text(encoding="utf-8").splitlines():
        rec = json.loads(raw)
        if rec.get("protocol") == "mqtt" and "fault" not in rec:
            published.setdefault(rec["point"], set()).add(rec["ts_ms"] * 1_000_000)
    first_ns = min(min(v) for v in published.values())
    stamps: dict[str, list[int]] = {}
    dq_records: list[tuple[str, list]] = []
    for s in influx_db.series('SELECT * FROM /.*/ WHERE "protocol" = \'mqtt\' GROUP BY "point"', epoch="ns"):
        if s["name"] == "data_quality":
            dq_records.extend((s["tags"]["point"], row) for row in s["values"])
        elif s["tags"]["point"]:
            # only this run's readings: the shared broker may still hold other tests' demo-topic
            # messages for the collector's persistent session (see the closing note of issue #2)
            stamps.setdefault(s["tags"]["point"], []).extend(row[0] for row in s["values"] if row[0] >= first_ns)
    # data-quality records (a stale check on a loaded machine, say) are not raw readings; this
    # test is about the raw series, so they are only kept for the failure message
    assert len(stamps) == 82
    for point, ts in stamps.items():
        ts.sort()
        assert ts[-1] >= last_ns, point
        assert len(ts) == len(set(ts)), f"{point}: duplicate (data quality: {dq_records[:3]})"
        assert set(ts) == published[point], f"{point}: lost {sorted(published[point] - set(ts))[:3]}"
