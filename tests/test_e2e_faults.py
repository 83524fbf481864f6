"""End to end: each device misbehaviour produces its data-quality record, and nothing crashes.

The simulator runs in the test process so each fault can be forced on a chosen meter; the
collectors are real processes under the supervisor, writing to a real influxd.
"""

from __future__ import annotations

import time

import pytest

from tests.parkrun import ParkRun, start_park_run, stop_park_run

pytestmark = pytest.mark.slow

#: (fault kind, target meter, data-quality reason the collector must record)
CASES = [
    ("opcua_bad_sensor", "m-pv-03", "bad_status"),
    ("opcua_comm_error", "m-wind-2", "bad_status"),
    ("modbus_illegal_address", "m-e01-smt-l2", "exception"),
    ("modbus_device_failure", "m-e01-pcb-l1", "exception"),
    ("modbus_timeout", "m-e02-poly-l1", "timeout"),
    ("mqtt_truncated", "m-e03-bakery-l1", "parse_error"),
    ("mqtt_not_json", "m-e03-cold-l2", "parse_error"),
    ("mqtt_missing_field", "m-e03-pack-l3", "parse_error"),
    ("counter_reset", "m-e04-wh-l1", "counter_reset"),
    ("counter_reset", "m-tx1-lv", "counter_reset"),
    ("counter_reset", "m-e01-cleanroom-l1", "counter_reset"),
    ("silent", "m-office-elec", "stale"),
    ("silent", "m-chiller-cool", "stale"),
    ("silent", "m-e04-charger", "timeout"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory, influxd, mosquitto):
    r = start_park_run(tmp_path_factory.mktemp("faults"), influxd, mosquitto, simulator_in_process=True)
    try:
        r.wait_all_points(120)
        yield r
    finally:
        stop_park_run(r)


def _dq(run: ParkRun, reason: str, meter: str, since_ms: int) -> int:
    rows = run.client.rows(
        f"SELECT count(\"count\") FROM \"data_quality\" WHERE \"reason\" = '{reason}' "
        f"AND time >= {since_ms}ms AND (\"meter\" = '{meter}' OR \"meter\" = '')")
    return rows[0]["count"] if rows else 0


#: a silent device must stay silent longer than stale_after_s (5 s) plus the collectors'
#: health-check period (10 s), which is when stale points are looked for
FAULT_S = 20.0


def test_every_misbehaviour_is_recorded_and_nothing_crashes(run):
    # records carry the reading's (simulated) timestamp, which trails the wall clock by a tick or two
    since = int(time.time() * 1000) - 10_000
    restarts_before = {name: c.get("restarts", 0) for name, c in run.children().items()}
    injected = time.monotonic()
    for kind, meter, _ in CASES:
        run.simulator.inject(kind, meter, duration_s=FAULT_S)
    deadline = time.monotonic() + 60
    missing = CASES
    while time.monotonic() < deadline and missing:
        time.sleep(2)
        missing = [c for c in CASES if _dq(run, c[2], c[1], since) == 0]
    if missing:
        seen = run.client.series(f'SELECT count("count") FROM "data_quality" WHERE time >= {since}ms '
                                 f'GROUP BY "reason", "meter"')
        found = sorted((x["tags"]["reason"], x["tags"]["meter"]) for x in seen)
        raise AssertionError(f"no data-quality record for {missing}; recorded: {found}")
    # the faulty meters recover once the faults end, and no collector restarted
    time.sleep(max(0.0, injected + FAULT_S + 8 - time.monotonic()))
    fresh = run.fresh_points(window_s=5)
    faulty = {m for _, m, _ in CASES}
    stale = [r.id for r in run.refs if r.meter.id in faulty and r.id not in fresh]
    assert not stale, f"points that did not recover after the faults: {stale}"
    children = run.children()
    assert all(c.get("status") == "running" for c in children.values()), children
    assert {n: c.get("restarts", 0) for n, c in children.items()} == restarts_before
