"""Quarantine, confirmation, correction and meter replacement through the calc API, on a live InfluxDB:
the stored hours, days and months are right once a person has said what happened."""

from __future__ import annotations

import pandas as pd
import pytest

from lingtan.park.index import iter_points
from lingtan.series import PointEncoder
from lingtan_calc.service.app import service_of
from tests.calc.test_api import computed
from tests.calc.test_engine_influx import HOURS, START, STEAM_GJ_PER_T, day_expectation, read_totals

B_ELEC = "m-b-elec.total"
PER_READING = 800.0 / 12  # B uses 800 kWh an hour, read every 5 minutes
SPIKE_AT = START + pd.Timedelta(hours=10, minutes=20)
KWH_TCE = 0.1229 / 1000


def b_reading(t: pd.Timestamp) -> float:
    """B's register as write_readings writes it (10 000 kWh an hour before START, then 800 kWh/h)."""
    return 10_000 + 800.0 * (t - START + pd.Timedelta(hours=1)) / pd.Timedelta(hours=1)


def write_b(db, park, t: pd.Timestamp, value: float) -> None:
    db.write_lines([PointEncoder(iter_points(park)).encode(B_ELEC, value, t.value)])


def run_queued(app) -> None:
    svc = service_of(app)
    while svc._queue:
        job = svc._queue.popleft()
        svc.run_job(job)
        assert job.state == "done", job.error


def b_hour(db, hour: int) -> float:
    hours = read_totals(db, "hour")
    return hours[(hours["entity"] == "B") & (hours["time"] == START + pd.Timedelta(hours=hour))][
        "comprehensive_tce"].iloc[0]


def assert_expected(db) -> None:
    """Every stored hour, day and month is what the meters really delivered."""
    for period, hours, n in (("hour", 1.0, HOURS), ("day", 24.0, 2), ("month", 48.0, 1)):
        got = read_totals(db, period)
        for entity, tce in day_expectation(hours).items():
            values = got[got["entity"] == entity]["comprehensive_tce"].to_numpy()
            assert values == pytest.approx([tce] * n, rel=1e-9), (period, entity)


def test_a_spike_is_quarantined_then_corrected_and_every_period_is_right_again(app, client, park, influx_db):
    # the meter reported one reading 1 000 000 kWh too high, then its true register again
    write_b(influx_db, park, SPIKE_AT, b_reading(SPIKE_AT) + 1_000_000.0)
    computed(app)
    open_ = client.get("/api/v1/quarantine?status=open").json["rows"]
    # readings are read as the last one of each minute, stamped at the minute's end (metered.read_counters)
    assert [(q["point"], q["start"], q["end"]) for q in open_] == [
        (B_ELEC, "2026-03-01T10:16:00+08:00", "2026-03-01T10:21:00+08:00"),  # up: 1 000 066.7 kWh in 5 min
        (B_ELEC, "2026-03-01T10:21:00+08:00", "2026-03-01T10:26:00+08:00")]  # back: a "reset" of 19 133 kWh
    assert open_[0]["measured"] == pytest.approx(1_000_000 + PER_READING)
    assert open_[0]["limit"] == pytest.approx(100_000 * 5 / 60 * 1.5)  # default electricity capacity, 5 min
    assert open_[0]["unit"] == "kWh" and open_[0]["enterprise"] == "B"
    # excluded from the totals: B's 10:00 hour lacks the two intervals, A (B's supplier) keeps them
    base = day_expectation(1.0)
    assert b_hour(influx_db, 10) == pytest.approx(base["B"] - 2 * PER_READING * KWH_TCE, rel=1e-9)
    dq = influx_db.rows('SELECT "value", "limit", "status", "point" FROM "data_quality" '
                        "WHERE \"reason\" = 'implausible_consumption'")
    assert len(dq) == 2 and {r["status"] for r in dq} == {"quarantined"} and {r["point"] for r in dq} == {B_ELEC}
    # the energy manager corrects both with what the meter should have shown; that recalculates
    for q in open_:
        r = client.post(f"/api/v1/quarantine/{q['id']}/correct", json={"quantity": PER_READING,
                        "reason": "register glitch; 800 kWh/h from the line's production log"},
                        headers={"X-Lingtan-User": "energy.manager"})
        assert r.status_code == 200, r.json
        assert r.json["quarantine"]["status"] == "corrected" and r.json["recalculation"]["start"].startswith(
            "2026-03-01T10:00")
    run_queued(app)
    assert_expected(influx_db)
    rows = client.get("/api/v1/quarantine").json["rows"]
    assert {r["status"] for r in rows} == {"corrected"} and {r["decided_by"] for r in rows} == {"energy.manager"}
    dq = influx_db.rows("SELECT \"status\" FROM \"data_quality\" WHERE \"reason\" = 'implausible_consumption'")
    assert {r["status"] for r in dq} == {"corrected"}
    # the long-range bulk read gives the same answer: those hours are recomputed from every reading
    calc = service_of(app).calculator
    runs = calc.recalculate(START, START + pd.Timedelta(hours=HOURS), "bulk", bulk_after=pd.Timedelta(hours=1))
    assert any("(bulk)" in r.reason for r in runs)
    assert not [c for r in runs if r.period == "hour" for c in r.changed]
    assert_expected(influx_db)


def test_a_confirmed_interval_counts_as_measured(app, client, park, influx_db):
    write_b(influx_db, park, SPIKE_AT, b_reading(SPIKE_AT) + 1_000_000.0)
    computed(app)
    first = client.get("/api/v1/quarantine?status=open").json["rows"][0]
    r = client.post(f"/api/v1/quarantine/{first['id']}/confirm", json={"reason": "test load, really drawn"})
    assert r.status_code == 200 and r.json["quarantine"]["status"] == "confirmed"
    run_queued(app)
    # the confirmed interval counts its 1 000 066.7 kWh; the step back down stays quarantined (0 instead of 66.7)
    expected = day_expectation(1.0)["B"] + (1_000_000 - PER_READING) * KWH_TCE
    assert b_hour(influx_db, 10) == pytest.approx(expected, rel=1e-9)
    assert [q["status"] for q in client.get("/api/v1/quarantine").json["rows"]] == ["confirmed", "open"]


def test_a_recorded_meter_replacement_keeps_the_old_meters_last_reading(app, client, park, influx_db):
    # B's meter was swapped at 20:02:30; the new register started at 0 and counts on at 800 kWh/h
    swap = START + pd.Timedelta(hours=20, minutes=2, seconds=30)
    for t in pd.date_range(START + pd.Timedelta(hours=20, minutes=5), START + pd.Timedelta(hours=HOURS + 1),
                           freq="5min"):
        write_b(influx_db, park, t, 800.0 * (t - swap) / pd.Timedelta(hours=1))
    computed(app)
    # unrecorded, the drop to 33 kWh is a reset: the old meter's last 33.3 kWh are lost
    lost = 800.0 * 2.5 / 60
    assert b_hour(influx_db, 20) == pytest.approx(day_expectation(1.0)["B"] - lost * KWH_TCE, rel=1e-9)
    r = client.post("/api/v1/meters/replacements", json={
        "point": B_ELEC, "time": "2026-03-01T20:02:30", "old_final": b_reading(swap), "new_initial": 0,
        "reason": "meter exchanged after calibration failure (work order 4711)"},
        headers={"X-Lingtan-User": "metering.tech"})
    assert r.status_code == 201, r.json
    rec = r.json["replacement"]
    assert rec["time"] == "2026-03-01T20:02:30+08:00" and rec["unit"] == "kWh" and rec["author"] == "metering.tech"
    assert r.json["recalculation"]["start"] <= "2026-03-01T20:00:00+08:00"
    run_queued(app)
    assert_expected(influx_db)
    # withdrawn (entered in error): kept, and the accounting goes back to the reset
    r = client.post(f"/api/v1/meters/replacements/{rec['id']}/withdraw", json={"reason": "wrong meter"})
    assert r.status_code == 200 and r.json["replacement"]["active"] is False
    run_queued(app)
    assert b_hour(influx_db, 20) == pytest.approx(day_expectation(1.0)["B"] - lost * KWH_TCE, rel=1e-9)
    assert len(client.get(f"/api/v1/meters/replacements?point={B_ELEC}").json) == 1


def test_meter_events_refuse_bad_input_naming_the_field(client):
    cases = [
        ({"point": "nope", "time": "2026-03-01T10:00", "old_final": 1, "new_initial": 0, "reason": "x"}, "point"),
        ({"point": "m-b-elec.total", "time": "soon", "old_final": 1, "new_initial": 0, "reason": "x"}, "time"),
        ({"point": "m-b-elec.total", "time": "2999-01-01", "old_final": 1, "new_initial": 0, "reason": "x"}, "time"),
        ({"point": "m-b-elec.total", "time": "2026-03-01", "old_final": -1, "new_initial": 0, "reason": "x"},
         "old_final"),
        ({"point": "m-b-elec.total", "time": "2026-03-01", "old_final": 1, "new_initial": "NaN", "reason": "x"},
         "new_initial"),
        ({"point": "m-b-elec.total", "time": "2026-03-01", "old_final": 1, "new_initial": 0}, "reason"),
        ({"point": "m-b-elec.total", "time": "1000-01-01", "old_final": 1, "new_initial": 0, "reason": "x"}, "time"),
        ({"point": "m-b-elec.total", "time": "2026-03-01", "old_final": True, "new_initial": 0, "reason": "x"},
         "old_final"),
    ]
    for body, field in cases:
        r = client.post("/api/v1/meters/replacements", json=body)
        assert r.status_code == 400 and r.json["error"]["field"] == field, (body, r.json)
    r = client.post("/api/v1/quarantine/999/correct", json={"quantity": 1, "reason": "x"})
    assert r.status_code == 404 and r.json["error"]["code"] == "unknown_quarantine"
    r = client.post("/api/v1/quarantine/999/correct", json={"quantity": -3, "reason": "x"})
    assert r.status_code == 400 and r.json["error"]["field"] == "quantity"
    assert client.get("/api/v1/quarantine?status=maybe").json["error"]["field"] == "status"


def test_a_replacement_at_the_old_meters_last_reading_and_twice(app, client, park, influx_db):
    """The natural entry: the time of the old meter's last reading. That reading is the old meter's."""
    last_old = START + pd.Timedelta(hours=20)  # a 5-minute reading; the new register follows from 20:05
    for t in pd.date_range(START + pd.Timedelta(hours=20, minutes=5), START + pd.Timedelta(hours=HOURS + 1),
                           freq="5min"):
        write_b(influx_db, park, t, 800.0 * (t - last_old) / pd.Timedelta(hours=1))
    computed(app)
    body = {"point": B_ELEC, "time": "2026-03-01T20:00:00", "old_final": b_reading(last_old), "new_initial": 0,
            "reason": "exchanged right after the 20:00 reading"}
    assert client.post("/api/v1/meters/replacements", json=body).status_code == 201
    run_queued(app)
    assert_expected(influx_db)
    again = client.post("/api/v1/meters/replacements", json=body)
    assert again.status_code == 409 and again.json["error"]["field"] == "time"
    rec = client.get("/api/v1/meters/replacements").json[0]
    assert client.post(f"/api/v1/meters/replacements/{rec['id']}/withdraw", json={"reason": "x"}).status_code == 200
    twice = client.post(f"/api/v1/meters/replacements/{rec['id']}/withdraw", json={"reason": "y"})
    assert twice.status_code == 409 and "withdrawn by" in twice.json["error"]["message"]


def test_events_are_counted_in_the_hour_they_happen(app, client, park, influx_db):
    write_b(influx_db, park, SPIKE_AT, b_reading(SPIKE_AT) + 1_000_000.0)
    computed(app)
    rows = client.get("/api/v1/meters?entity=B&period=hour&start=2026-03-01&end=2026-03-02").json["rows"]
    events = {r["period_start"][11:16]: r["events"] for r in rows if r["point"] == B_ELEC and r["events"]}
    assert events == {"10:00": 2}  # the two quarantined intervals, in their hour only
    day = client.get("/api/v1/meters?entity=B&period=day&start=2026-03-01&end=2026-03-02").json["rows"]
    assert {r["point"]: r["events"] for r in day}[B_ELEC] == 2


def test_per_meter_figures_are_the_accounted_ones(app, client):
    computed(app)
    body = client.get("/api/v1/meters?entity=B&period=day&start=2026-03-01&end=2026-03-02").json
    by_point = {r["point"]: r for r in body["rows"]}
    assert set(by_point) == {"m-b-elec.total", "m-b-steam.total"}
    assert by_point["m-b-elec.total"]["quantity"] == pytest.approx(800 * 24)
    assert by_point["m-b-elec.total"]["role"] == "consumption" and by_point["m-b-elec.total"]["unit"] == "kWh"
    assert by_point["m-b-steam.total"]["quantity"] == pytest.approx(0.3 * 24)  # t
    park_rows = client.get("/api/v1/meters?period=day&start=2026-03-01&end=2026-03-02&carrier=electricity").json
    assert {r["point"] for r in park_rows["rows"]} == {"m-grid.import", "m-grid.export", "m-pv.total", "m-b-elec.total"}
    assert STEAM_GJ_PER_T > 0
