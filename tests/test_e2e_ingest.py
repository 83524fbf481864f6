"""End to end: the demo park's simulators → three collectors → InfluxDB, with faults.

Everything is real: influxd, mosquitto, the asyncua/pymodbus/paho simulator process, the
collector processes and the supervisor that restarts them.
"""

from __future__ import annotations

import math
import os
import signal
import time

import pytest

from lingtan.park.model import Protocol
from lingtan.series import point_tags
from tests.parkrun import ParkRun, start_park_run, stop_park_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, influxd, mosquitto):
    r = start_park_run(tmp_path_factory.mktemp("e2e"), influxd, mosquitto)
    try:
        r.wait_all_points(120)
        yield r
    finally:
        stop_park_run(r)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_exactly_once(run: ParkRun, start_ms: int, end_ms: int, *, modbus_gap_ok_ms: tuple[int, int] | None = None):
    """Every value emitted in [start, end] is stored once, with its value; Modbus slots have no gaps."""
    emitted = run.emitted()
    stored = run.stored(start_ms, end_ms)
    problems = []
    for ref in run.refs:
        got = stored.get(ref.id, [])
        times = [t for t, _ in got]
        assert len(times) == len(set(times))
        if ref.protocol is Protocol.modbus:
            interval_ms = 1000
            slots = set(range(-(-start_ms // interval_ms) * interval_ms, end_ms + 1, interval_ms))
            missing = sorted(slots - set(times))
            if modbus_gap_ok_ms is not None:
                lo, hi = modbus_gap_ok_ms
                missing = [t for t in missing if not lo <= t <= hi]
            if missing:
                problems.append(f"{ref.id}: {len(missing)} Modbus slots missing, first {missing[:3]}")
            continue
        want = sorted(e for e in emitted.get(ref.id, []) if start_ms <= e[0] <= end_ms)
        if [t for t, _ in want] != times:
            lost = sorted(set(t for t, _ in want) - set(times))
            extra = sorted(set(times) - set(t for t, _ in want))
            problems.append(f"{ref.id}: emitted {len(want)}, stored {len(times)}, lost {lost[:3]}, extra {extra[:3]}")
            continue
        bad = [(t, v, w) for (t, v), (_, w) in zip(got, want, strict=True) if not _close(v, w)]
        if bad:
            problems.append(f"{ref.id}: values differ {bad[:2]}")
    assert not problems, f"{len(problems)} points not exactly once:\n" + "\n".join(problems[:30])


def test_every_point_arrives_with_value_scaling_and_tags(run):
    """Each of the demo park's points arrives through its protocol with its tags and scaled value."""
    time.sleep(8)  # a few ticks and polls after the first value of every point
    end = _now_ms() - 2000
    start = end - 6000
    stored = run.stored(start, end)
    emitted = run.emitted()
    for ref in run.refs:
        assert stored.get(ref.id), f"no data for {ref.id} ({ref.protocol.value})"
        values = {v for _, v in emitted.get(ref.id, [])}
        for _t, v in stored[ref.id][-3:]:
            if ref.protocol is Protocol.modbus:
                # polled: the value is one the simulator served, to the register's resolution
                resolution = abs(ref.point.scale * ref.to_canonical) if ref.point.modbus.type not in (
                    "float32", "float64") else max(1e-6, abs(v) * 1e-6)
                assert any(abs(v - e) <= resolution for e in values), (ref.id, v)
            else:
                assert any(_close(v, e) for e in values), (ref.id, v)
    # tags: every series carries exactly the schema's tags
    carriers = sorted({r.carrier.value for r in run.refs})
    series = run.client.series(
        f'SELECT last("total"), last("rate") FROM {",".join(f"{chr(34)}{c}{chr(34)}" for c in carriers)} '
        f"WHERE time > now() - 1m GROUP BY *")
    tags_by_point = {s["tags"]["point"]: s["tags"] for s in series}
    for ref in run.refs:
        assert {k: v for k, v in tags_by_point[ref.id].items() if v} == point_tags(ref)


def test_influxdb_outage_of_60s_loses_nothing(run, influxd):
    time.sleep(3)
    start = _now_ms()
    influxd.instance.stop()
    time.sleep(60)
    statuses = [run.collector_status(n) for n in ("collector-opcua", "collector-modbus", "collector-mqtt")]
    assert all(s["buffer_bytes"] > 0 for s in statuses), statuses
    influxd.instance.start()
    end = _now_ms()
    time.sleep(3)
    run.wait_drained(180)
    assert_exactly_once(run, start, end)


@pytest.mark.parametrize("name", ["collector-opcua", "collector-modbus", "collector-mqtt"])
def test_collector_sigkill_loses_nothing(run, name):
    time.sleep(3)
    start = _now_ms()
    old = run.pid(name)
    os.kill(old, signal.SIGKILL)
    killed = _now_ms()
    run.wait_restarted(name, old)
    restarted = _now_ms()
    time.sleep(8)
    end = _now_ms() - 3000
    run.wait_drained(120)
    # a polled Modbus device is not read while its collector is dead: those slots were never emitted
    assert_exactly_once(run, start, end, modbus_gap_ok_ms=(killed - 1000, restarted + 1000))


def test_broker_restart_loses_no_qos1_message(run, mosquitto):
    time.sleep(3)
    start = _now_ms()
    mosquitto.instance.stop()
    time.sleep(5)
    mosquitto.instance.start()
    time.sleep(10)
    end = _now_ms() - 3000
    run.wait_drained(120)
    assert_exactly_once(run, start, end)
