"""The metered path against a live InfluxDB: raw counters in, derived series out.

Counter readings are written the way the collectors write them (same measurement, tags and
field); the calculator reads them back through InfluxQL, writes hourly series, and rolls days
and months up from the hours. Results are checked against hand-computed values.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lingtan.park.index import iter_points
from lingtan.park.loader import parse_park
from lingtan.series import PointEncoder
from lingtan_calc.core.accounting.boundary import PARK_ENTITY
from lingtan_calc.core.accounting.factors import FactorLibrary
from lingtan_calc.service.engine import ParkCalculator
from tests.calc.parks import PARK_AB

TZ = "Asia/Shanghai"
STEAM_GJ_PER_T = (2777.1 - 83.74) / 1000
#: per hour: grid import, export, PV, steam bought, B's electricity, B's steam [kWh, kWh, MWh, t, kWh, kg]
PER_HOUR = {"m-grid.import": 1000.0, "m-grid.export": 50.0, "m-pv.total": 0.2, "m-steam.total": 0.5,
            "m-b-elec.total": 800.0, "m-b-steam.total": 300.0}
START = pd.Timestamp("2026-03-01", tz=TZ)
HOURS = 48


@pytest.fixture
def db(influx_db):
    influx_db.query(f'CREATE RETENTION POLICY "raw" ON "{influx_db.database}" DURATION INF REPLICATION 1 DEFAULT',
                    database="")
    influx_db.query(f'CREATE RETENTION POLICY "accounting" ON "{influx_db.database}" DURATION INF REPLICATION 1',
                    database="")
    return influx_db


def write_readings(client, park, every: str = "5min", extra: dict | None = None, skip: tuple = ()) -> None:
    """Counters rising evenly by PER_HOUR (in each point's own unit), from START - 1 h to START + HOURS + 1 h."""
    refs = iter_points(park)
    enc = PointEncoder(refs)
    scale = {r.id: r.to_canonical for r in refs}
    times = pd.date_range(START - pd.Timedelta(hours=1), START + pd.Timedelta(hours=HOURS + 1), freq=every)
    lines = []
    for pid, per_hour in PER_HOUR.items():
        if pid in skip:
            continue
        for t in times:
            hours = (t - times[0]) / pd.Timedelta(hours=1)
            value = (10_000 + per_hour * hours) * scale[pid]  # stored in the canonical unit
            lines.append(enc.encode(pid, value, t.value))
    for pid, (t, value) in (extra or {}).items():
        lines.append(enc.encode(pid, value, t.value))
    client.write_lines(lines)


def day_expectation(hours: float) -> dict[str, float]:
    kwh = {k: v * hours for k, v in PER_HOUR.items()}
    pv = kwh["m-pv.total"] * 1000  # MWh -> kWh
    steam_t, b_steam_t = kwh["m-steam.total"], kwh["m-b-steam.total"] / 1000
    a = ((kwh["m-grid.import"] + pv - kwh["m-grid.export"] - kwh["m-b-elec.total"]) * 0.1229
         + (steam_t - b_steam_t) * STEAM_GJ_PER_T * 34.12) / 1000
    b = (kwh["m-b-elec.total"] * 0.1229 + b_steam_t * STEAM_GJ_PER_T * 34.12) / 1000
    return {"A": a, "B": b, PARK_ENTITY: a + b}


def read_totals(client, period: str) -> pd.DataFrame:
    rows = client.rows(f'SELECT * FROM "{client.database}"."accounting"."acc_totals" WHERE "period" = \'{period}\' '
                       f'GROUP BY "entity"', epoch="ns")
    df = pd.DataFrame(rows)
    df["time"] = pd.to_datetime(df["time"], utc=True).dt.tz_convert(TZ)
    return df


@pytest.mark.parametrize("bucket", [None, "1m"])
def test_hours_days_and_month_from_raw_counters(db, bucket):
    park = parse_park(PARK_AB, Path("ex2.yaml"))
    write_readings(db, park)
    calc = ParkCalculator(park, db, FactorLibrary.shipped(), bucket=bucket)
    runs = calc.recalculate(START, START + pd.Timedelta(hours=HOURS), "test")
    assert all(not r.error for r in runs)
    hours = read_totals(db, "hour")
    assert len(hours[hours["entity"] == "A"]) == HOURS
    one_hour = day_expectation(1.0)
    for entity, tce in one_hour.items():
        got = hours[hours["entity"] == entity]["comprehensive_tce"]
        assert got.to_numpy() == pytest.approx([tce] * HOURS, rel=1e-9), entity
    days = read_totals(db, "day")
    assert sorted(days["time"].dt.strftime("%Y-%m-%d").unique()) == ["2026-03-01", "2026-03-02"]
    for entity, tce in day_expectation(24.0).items():
        got = days[days["entity"] == entity]["comprehensive_tce"]
        assert got.to_numpy() == pytest.approx([tce, tce], rel=1e-9), entity
    month = read_totals(db, "month")
    for entity, tce in day_expectation(48.0).items():
        assert month[month["entity"] == entity]["comprehensive_tce"].iloc[0] == pytest.approx(tce, rel=1e-9)
        assert month[month["entity"] == entity]["total_tco2"].iloc[0] == pytest.approx(
            days[days["entity"] == entity]["total_tco2"].sum(), rel=1e-12)
    year = read_totals(db, "year")
    assert year[year["entity"] == PARK_ENTITY]["comprehensive_tce"].iloc[0] == pytest.approx(
        day_expectation(48.0)[PARK_ENTITY], rel=1e-9)
    # traceable: the park's emission series name their meter and factor
    em = db.rows(f'SELECT "tco2", "factors" FROM "{db.database}"."accounting"."acc_emission" '
                 f"WHERE \"entity\" = 'park' AND \"period\" = 'day' GROUP BY \"meter\", \"category\"")
    assert {(r["meter"], r["category"]) for r in em} == {("m-grid", "purchased_electricity"),
                                                         ("m-grid", "exported_electricity"),
                                                         ("m-steam", "purchased_heat")}
    assert {r["factors"] for r in em if r["meter"] == "m-grid"} == {"mee.grid.2023.east_china.average"}


def test_recalculation_is_idempotent_and_picks_up_late_data(db):
    park = parse_park(PARK_AB, Path("ex2.yaml"))
    write_readings(db, park, every="15min", skip=("m-b-elec.total",))
    refs = iter_points(park)
    enc = PointEncoder(refs)
    b_elec = "m-b-elec.total"
    # B's meter was unreachable from 09:30 to 12:30 on the first day; meanwhile it used 600 kWh
    # more than usual, all of it between 10:00 and 11:00 (its readings arrive later)
    gap = pd.date_range(START + pd.Timedelta(hours=9, minutes=45), START + pd.Timedelta(hours=12, minutes=15),
                        freq="15min")
    late_lines = []
    for t in pd.date_range(START - pd.Timedelta(hours=1), START + pd.Timedelta(hours=HOURS + 1), freq="15min"):
        base = 10_000 + 800.0 * (t - START + pd.Timedelta(hours=1)) / pd.Timedelta(hours=1)
        extra = 600.0 * min(1.0, max(0.0, (t - START - pd.Timedelta(hours=10)) / pd.Timedelta(hours=1)))
        line = enc.encode(b_elec, base + extra, t.value)
        if t in gap:
            late_lines.append(line)
        else:
            db.write_lines([line])
    calc = ParkCalculator(park, db, FactorLibrary.shipped(), bucket="1m")
    end = START + pd.Timedelta(hours=HOURS)
    calc.recalculate(START, end, "first")
    count = db.rows(f'SELECT count("comprehensive_tce") FROM "{db.database}"."accounting"."acc_totals"')[0]["count"]
    again = calc.recalculate(START, end, "again")
    assert all(not r.changed for r in again)  # nothing changed, nothing duplicated
    assert db.rows(f'SELECT count("comprehensive_tce") FROM "{db.database}"."accounting"."acc_totals"')[0]["count"] \
        == count
    day_before = read_totals(db, "day").set_index(["entity", "time"])["comprehensive_tce"]
    db.write_lines(late_lines)  # the collector's disk buffer replays
    late = calc.recalculate(START + pd.Timedelta(hours=9), START + pd.Timedelta(hours=13), "late data")
    changed = [c for r in late if r.period == "hour" for c in r.changed]
    assert any(c.startswith("B 2026-03-01T10:00") for c in changed), changed
    hours = read_totals(db, "hour")
    b10 = hours[(hours["entity"] == "B") & (hours["time"] == START + pd.Timedelta(hours=10))]
    assert b10["comprehensive_tce"].iloc[0] == pytest.approx(
        (1400 * 0.1229 + 0.3 * STEAM_GJ_PER_T * 34.12) / 1000, rel=1e-9)  # 800 + 600 kWh in that hour
    # the day's total did not change: the same energy, now in the right hours
    day_after = read_totals(db, "day").set_index(["entity", "time"])["comprehensive_tce"]
    pd.testing.assert_series_equal(day_before, day_after, rtol=1e-9)


def test_a_meter_without_a_counter_is_integrated(db):
    """B's steam measured only by a flow rate (t/h): hourly energy is its integral."""
    text = PARK_AB.replace(
        "              - {id: m-b-steam.total, kind: counter, unit: kg, opcua: {node_id: \"ns=2;s=bs\"}}",
        "              - {id: m-b-steam.rate, kind: rate, unit: t/h, opcua: {node_id: \"ns=2;s=bsr\"}}")
    assert "m-b-steam.rate" in text
    park = parse_park(text, Path("ex2r.yaml"))
    write_readings(db, park, skip=("m-b-steam.total",))
    refs = iter_points(park)
    enc = PointEncoder(refs)
    # 0.3 t/h all day, sampled every 10 s (the counter version used 300 kg per hour)
    times = pd.date_range(START - pd.Timedelta(hours=1), START + pd.Timedelta(hours=HOURS + 1), freq="10s")
    db.write_lines([enc.encode("m-b-steam.rate", 0.3, t.value) for t in times])
    calc = ParkCalculator(park, db, FactorLibrary.shipped(), bucket="1m")
    calc.recalculate(START, START + pd.Timedelta(hours=HOURS), "test")
    days = read_totals(db, "day")
    for entity, tce in day_expectation(24.0).items():
        got = days[days["entity"] == entity]["comprehensive_tce"]
        assert got.to_numpy() == pytest.approx([tce, tce], rel=1e-9), entity


def test_bulk_recalculation_matches_the_exact_path(db):
    """A long range is read in bulk (first reading per hour); with readings on the hour it
    gives exactly the hour-by-hour figures."""
    park = parse_park(PARK_AB, Path("ex2.yaml"))
    write_readings(db, park, every="15min")
    calc = ParkCalculator(park, db, FactorLibrary.shipped(), bucket="1m")
    end = START + pd.Timedelta(hours=HOURS)
    runs = calc.recalculate(START, end, "bulk", bulk_after=pd.Timedelta(hours=1))
    assert any("(bulk)" in r.reason for r in runs)
    days = read_totals(db, "day")
    for entity, tce in day_expectation(24.0).items():
        got = days[days["entity"] == entity]["comprehensive_tce"]
        assert got.to_numpy() == pytest.approx([tce, tce], rel=1e-9), entity
    exact = calc.recalculate(START, end, "exact")  # 2 days: hour by hour, nothing may change
    assert all(not r.changed for r in exact if r.period == "hour")
