"""``lingtan simulate --backfill``: simulated history written as the collectors write it, meeting the live data.

Against a real influxd: a fresh park gets days of 15-minute readings ending now and the live
simulator's counter file; a park with data gets history that ends where its first readings begin,
each counter running into its first stored reading without a step; the raw retention bounds it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lingtan.park.carriers import Kind
from lingtan.park.index import iter_points
from lingtan.park.loader import load_park
from lingtan.series import PointEncoder
from lingtan.settings import DEMO_PARK, Settings
from lingtan_tools.simulate.backfill import BackfillError, backfill, parse_days
from lingtan_tools.simulate.engine import Engine

NOW = pd.Timestamp("2026-11-20 08:07:30", tz="UTC")
POINT = "m-grid-main.total_import"


def _settings(influx_db, tmp_path) -> Settings:
    return Settings(state_dir=tmp_path, influx_url=influx_db.url, influx_db=influx_db.database,
                    influx_user=influx_db.username, influx_password=influx_db.password)


def _readings(client, point: str) -> pd.Series:
    rows = client.rows(f'SELECT "total" FROM "electricity" WHERE "point" = \'{point}\'', epoch="ns")
    return pd.Series([r["total"] for r in rows], index=pd.to_datetime([r["time"] for r in rows], utc=True))


def test_parse_days_names_the_value() -> None:
    assert parse_days("60d") == 60 and parse_days("8w") == 56 and parse_days("3") == 3
    for bad in ("sixty", "0d", "20000d"):
        with pytest.raises(BackfillError, match=repr(bad)):
            parse_days(bad)


def test_fresh_park_ends_now_and_hands_its_counters_to_the_live_simulator(influx_db, tmp_path) -> None:
    park = load_park(DEMO_PARK)
    state = tmp_path / "counters.json"
    result = backfill(park, _settings(influx_db, tmp_path), 2.0, counter_state=state, now=NOW)
    assert result.end == pd.Timestamp("2026-11-20 08:00", tz="UTC") and result.start == result.end - pd.Timedelta(days=2)
    series = _readings(influx_db, POINT)
    assert len(series) == 2 * 96 and series.index[-1] == result.end - pd.Timedelta(minutes=15)
    assert (np.diff(series.to_numpy()) >= 0).all()  # a counter never runs back
    saved = json.loads(state.read_text())
    assert saved["park"] == park.park.id and pd.Timestamp(saved["sim_time"]) == result.end
    # the saved reading is the one at the end: the last backfilled one plus the last 15 minutes
    assert saved["counters"][POINT] > series.iloc[-1]
    rate = influx_db.rows('SELECT last("rate") FROM "electricity" WHERE "point" = \'m-grid-main.rate_import\'')[0]
    assert saved["counters"][POINT] - series.iloc[-1] == pytest.approx(rate["last"] * 0.25, rel=1e-9)
    # the hourly import is physically plausible: below the 25 MW connection, above nothing
    hourly = series.diff(4).dropna()
    assert hourly.min() > 0 and hourly.max() < 25_000
    again = backfill(park, _settings(influx_db, tmp_path), 2.0, counter_state=state, now=NOW)
    assert again.start is None and "already reaches back" in again.note


def test_history_runs_into_the_first_stored_readings(influx_db, tmp_path) -> None:
    park = load_park(DEMO_PARK)
    refs = iter_points(park)
    live = Engine(park, seed=1, start=NOW.to_pydatetime(), step_s=1.0)
    live.step()
    first = int(NOW.value)
    encoder = PointEncoder(refs)
    influx_db.write_lines([encoder.encode(r.id, float(live.values[i]), first) for i, r in enumerate(refs)
                           if r.point.kind is Kind.counter])
    result = backfill(park, _settings(influx_db, tmp_path), 1.0, counter_state=tmp_path / "c.json", now=NOW)
    assert result.end == NOW.floor("15min")
    assert not (tmp_path / "c.json").exists()  # the live simulator's readings are the stored ones
    series = _readings(influx_db, POINT)
    assert series.index[-1] == NOW and series.index[-2] == result.end - pd.Timedelta(minutes=15)
    step = series.iloc[-1] - series.iloc[-2]
    rate = influx_db.rows('SELECT last("rate") FROM "electricity" WHERE "point" = \'m-grid-main.rate_import\'')[0]
    assert step == pytest.approx(rate["last"] * 0.25, rel=1e-9)  # no jump where the history meets the data


def test_backfill_stays_inside_the_raw_retention(influx_db, tmp_path) -> None:
    influx_db.query(f'CREATE RETENTION POLICY "raw" ON "{influx_db.database}" DURATION 90d REPLICATION 1 DEFAULT',
                    database="")
    with pytest.raises(BackfillError, match="keeps 90 days.*at most 89d"):
        backfill(load_park(DEMO_PARK), _settings(influx_db, tmp_path), 180.0, now=NOW)
    assert influx_db.rows('SHOW MEASUREMENTS') == []
