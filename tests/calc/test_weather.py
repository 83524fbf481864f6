"""Weather: degree days, the degree-day model and the weather-normalised comparison, by hand and through the API.

The API test runs the example park for 36 days (2026-02-01 .. 2026-03-08) with a grid import of
1,000 + 40 × HDD kWh every hour of a day whose mean temperature gives HDD heating degree days,
everything else constant. The park's electricity counts 0.1229 kgce/kWh (GB/T 2589-2020, 当量值),
so each K·d costs 40 × 24 × 0.1229 / 1000 = 0.117984 tce: the model must find exactly that, and the
week compared with the week before must come out unchanged once the weather is taken out.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lingtan.db import make_engine, session_factory
from lingtan.park.index import iter_points
from lingtan.park.loader import parse_park
from lingtan.series import PointEncoder
from lingtan.settings import Settings
from lingtan_calc.adapters.weather_store import WeatherRecord, import_weather, validate_weather, weather_frame
from lingtan_calc.core.analysis.weather import (
    daily_mean_temperature,
    degree_days,
    fit_weather_model,
    weather_normalised,
)
from lingtan_calc.service.app import create_app
from lingtan_calc.service.scheduler import service_of
from tests.calc.parks import PARK_AB
from tests.calc.test_engine_influx import PER_HOUR

TZ = "Asia/Shanghai"
WEATHER = """
weather:
  stations:
    - {id: wx1, name: 园区气象站, source: onsite}
    - {id: cma-58357, name: 苏州国家基本气象站, source: meteorological_service}
  reference: wx1
"""
PER_KD_TCE = 40.0 * 24 * 0.1229 / 1000  # [tce per K·d]


# --------------------------------------------------------------------------- core, by hand

def test_daily_mean_needs_most_hours_of_the_day() -> None:
    hours = pd.date_range("2026-01-05", periods=48, freq="h", tz=TZ)
    temps = pd.Series(np.r_[np.arange(24, dtype=float), np.full(24, 3.0)], index=hours)
    temps = temps.drop(hours[24 + 17:])  # the second day has only 17 hours
    mean = daily_mean_temperature(temps)
    assert list(mean.index) == [pd.Timestamp("2026-01-05", tz=TZ)]
    assert mean.iloc[0] == pytest.approx(11.5)  # (0 + 1 + … + 23) / 24


def test_daily_mean_averages_each_hour_first() -> None:
    # six 10-minute readings in one hour count as that hour once, not six times
    times = pd.date_range("2026-01-05", periods=24, freq="h", tz=TZ).append(
        pd.date_range("2026-01-05 00:10", periods=5, freq="10min", tz=TZ))
    temps = pd.Series([10.0] * 24 + [40.0] * 5, index=times).sort_index()
    assert daily_mean_temperature(temps).iloc[0] == pytest.approx(((10.0 + 5 * 40.0) / 6 + 23 * 10.0) / 24)


def test_degree_days_of_gb50176_bases() -> None:
    days = degree_days(pd.Series([10.0, 20.0, 30.0, 18.0, 26.0]))
    assert days["hdd"].tolist() == [8.0, 0.0, 0.0, 0.0, 0.0]
    assert days["cdd"].tolist() == [0.0, 0.0, 4.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="heating_base 20"):
        degree_days(pd.Series([10.0]), heating_base=20.0, cooling_base=15.0)


def _days(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2026-01-01", periods=n, freq="D", tz=TZ)


def test_model_finds_the_heating_slope() -> None:
    idx = _days(60)
    hdd = pd.Series(8.0 + 6.0 * np.sin(np.arange(60) / 3.0), index=idx)
    workday = pd.Series(np.arange(60) % 7 < 5, index=idx)
    wiggle = 0.05 * np.cos(np.arange(60) * 1.7)  # a little noise that no term explains
    energy = pd.Series(5.0 + 3.0 * workday + 2.0 * hdd + wiggle, index=idx)
    model = fit_weather_model(energy, pd.DataFrame({"hdd": hdd, "cdd": 0.0}), workday)
    assert model["per_hdd"] == pytest.approx(2.0, abs=0.01)
    assert model["per_workday"] == pytest.approx(3.0, abs=0.03)
    assert model["per_cdd"] == 0.0  # no cooling degree days at all: no term
    assert model["weather_dependent"] and model["days"] == 60 and model["r2"] > 0.99


def test_model_drops_a_term_that_is_noise_or_the_wrong_way() -> None:
    idx = _days(40)
    cdd = pd.Series(np.abs(np.sin(np.arange(40) / 2.0)) * 4.0, index=idx)
    # energy that falls as it gets hotter is not a cooling load
    model = fit_weather_model(pd.Series(50.0 - 1.5 * cdd, index=idx), pd.DataFrame({"hdd": 0.0, "cdd": cdd}))
    assert model["per_cdd"] == 0.0 and not model["weather_dependent"]
    flat = pd.Series(50.0 + np.cos(np.arange(40) * 2.3), index=idx)  # no dependence: only noise
    assert not fit_weather_model(flat, pd.DataFrame({"hdd": cdd, "cdd": 0.0}))["weather_dependent"]
    with pytest.raises(ValueError, match="29 days with both energy and temperature; the weather model needs 30"):
        fit_weather_model(flat.iloc[:29], pd.DataFrame({"hdd": cdd, "cdd": 0.0}))


def test_normalised_to_the_base_weather_by_hand() -> None:
    model = {"per_hdd": 2.0, "per_cdd": 1.0}
    base = pd.DataFrame({"hdd": [50.0, 50.0], "cdd": [0.0, 10.0]})  # 100 HDD, 10 CDD
    current = pd.DataFrame({"hdd": [80.0, 70.0], "cdd": [0.0, 4.0]})  # 150 HDD, 4 CDD
    out = weather_normalised(550.0, 700.0, base, current, model)
    assert out["weather_effect"] == pytest.approx(2.0 * 50 + 1.0 * -6)  # 94
    assert out["normalised_current"] == pytest.approx(606.0)
    assert out["normalised_change"] == pytest.approx(56.0)
    assert out["normalised_change_ratio"] == pytest.approx(56.0 / 550.0)
    assert (out["base_hdd"], out["current_cdd"]) == (100.0, 4.0)


# --------------------------------------------------------------------------- store

NOW = pd.Timestamp("2026-03-10T00:00", tz=TZ)


def test_bad_rows_are_named_and_nothing_is_stored(tmp_path) -> None:
    rows = [{"station": "wx9", "time": "2026-03-01T00:00", "air_temperature": 5},
            {"station": "wx1", "time": "yesterday", "air_temperature": 5},
            {"station": "wx1", "time": "2026-03-01T01:00", "air_temperature": 80},
            {"station": "wx1", "time": "2026-03-01T02:00", "ghi": "bright"},
            {"station": "wx1", "time": "2026-04-01T00:00", "air_temperature": 5},
            {"station": "wx1", "time": "2026-03-01T03:00"},
            {"station": "wx1", "time": "2026-03-01T04:00", "air_temperature": 5, "wind": 3},
            {"station": "wx1", "time": "2026-03-01T05:00", "air_temperature": 5},
            {"station": "wx1", "time": "2026-02-28T21:00Z", "air_temperature": 6}]
    _, errors = validate_weather(rows, {"wx1"}, "wx.csv", now=NOW)
    assert errors == [
        "wx.csv: row 1: station 'wx9' is not a weather station of the park model (['wx1'])",
        "wx.csv: row 2: time 'yesterday' is not an ISO 8601 time (e.g. 2026-07-01T14:00+08:00)",
        "wx.csv: row 3: air_temperature 80 is outside -60..60 °C",
        "wx.csv: row 4: ghi 'bright' is not a number [W/m²]",
        "wx.csv: row 5: time '2026-04-01T00:00' is in the future; an observation cannot be",
        "wx.csv: row 6: no air_temperature or ghi",
        "wx.csv: row 7: unknown column(s) ['wind']; use ['station', 'time', 'air_temperature', 'ghi']",
        "wx.csv: row 9: station 'wx1' at 2026-02-28T21:00:00+00:00 repeats row 8",
    ]
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path / 'w.db'}"))
    with sessions() as s:
        batch = import_weather(s, rows, {"wx1"}, source="wx.csv", payload=b"x", author="op", now=NOW)
        assert not batch.accepted and len(batch.errors) == 8
        assert s.query(WeatherRecord).count() == 0


def test_a_correction_supersedes_and_keeps_the_old_value(tmp_path) -> None:
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path / 'w.db'}"))
    first = [{"station": "wx1", "time": f"2026-03-01T{h:02d}:00", "air_temperature": 5.0} for h in range(3)]
    with sessions() as s:
        assert import_weather(s, first, {"wx1"}, source="a.csv", payload=b"a", author="op", now=NOW).accepted
        fix = [{"station": "wx1", "time": "2026-03-01T01:00+08:00", "air_temperature": 6.5}]
        assert import_weather(s, fix, {"wx1"}, source="b.csv", payload=b"b", author="op", now=NOW).accepted
        frame = weather_frame(s, "wx1", pd.Timestamp("2026-03-01", tz=TZ), pd.Timestamp("2026-03-02", tz=TZ))
        assert frame["air_temperature"].tolist() == [5.0, 6.5, 5.0]
        old = s.query(WeatherRecord).filter(WeatherRecord.superseded_by.is_not(None)).one()
        assert old.air_temperature == 5.0  # kept, marked as replaced


# --------------------------------------------------------------------------- through the calc API

START = pd.Timestamp("2026-02-01", tz=TZ)
DAYS = 36


def day_temperature(day: int) -> float:
    """Mean temperature of day ``day`` after START [°C]: spring coming, 0 to 15 °C, so HDD18 from 3 to 18."""
    return 2.0 + 0.3 * day + 2.0 * math.sin(day / 1.3)


def write_heating_park(client, park) -> None:
    """Hourly counters for DAYS days; the grid import takes 40 kWh/h more per K·d of the day."""
    refs = iter_points(park)
    enc, scale = PointEncoder(refs), {r.id: r.to_canonical for r in refs}
    hours = pd.date_range(START - pd.Timedelta(hours=1), START + pd.Timedelta(days=DAYS, hours=1), freq="h")
    lines = []
    for pid, per_hour in PER_HOUR.items():
        total = 10_000.0
        for t in hours:
            lines.append(enc.encode(pid, total * scale[pid], t.value))
            day = int((t - START) / pd.Timedelta(days=1))
            extra = 40.0 * (18.0 - day_temperature(day)) if pid == "m-grid.import" and 0 <= day < DAYS else 0.0
            total += per_hour + extra
    client.write_lines(lines)


@pytest.fixture
def weather_app(influx_db, tmp_path):
    for rp, default in (("raw", " DEFAULT"), ("accounting", "")):
        influx_db.query(f'CREATE RETENTION POLICY "{rp}" ON "{influx_db.database}" DURATION INF REPLICATION 1{default}',
                        database="")
    park = parse_park(PARK_AB + WEATHER, Path("ex2w.yaml"))
    write_heating_park(influx_db, park)
    settings = Settings(state_dir=tmp_path, influx_url=influx_db.url, influx_db=influx_db.database,
                        influx_user=influx_db.username, influx_password=influx_db.password,
                        park_file=tmp_path / "ex2w.yaml")
    app = create_app(settings, park=park, client=influx_db, start_scheduler=False)
    svc = service_of(app)
    job = svc.submit(START, START + pd.Timedelta(days=DAYS), "test", "pytest")
    svc._queue.clear()
    svc.run_job(job)
    assert job.state == "done", job.error
    return app


def _observations(station: str = "wx1") -> list[dict]:
    hours = pd.date_range(START, START + pd.Timedelta(days=DAYS), freq="h", inclusive="left")
    # each day holds its mean all day (a diurnal swing around it would give the same mean)
    return [{"station": station, "time": t.isoformat(), "air_temperature": round(day_temperature(int(i // 24)), 6)}
            for i, t in enumerate(hours)]


def test_weather_import_and_degree_days(weather_app) -> None:
    client = weather_app.test_client()
    r = client.post("/api/v1/weather", json={"rows": _observations()}, headers={"X-Lingtan-User": "wx-feed"})
    assert r.status_code == 201, r.json
    assert r.json["rows"] == DAYS * 24 and r.json["accepted"]
    bad = client.post("/api/v1/weather", json={"rows": [{"station": "wx1", "time": "2026-02-01T00:00",
                                                         "air_temperature": "-"}]})
    assert bad.status_code == 422 and bad.json["errors"] == ["api: row 1: air_temperature '-' is not a number [°C]"]
    csv = "station,time,air_temperature\ncma-58357,2026-02-01T00:00+08:00,4.5\n"
    up = client.post("/api/v1/weather/import", data={"file": (__import__("io").BytesIO(csv.encode()), "cma.csv")})
    assert up.status_code == 201 and up.json["source"] == "cma.csv"
    body = client.get("/api/v1/weather?start=2026-02-01&end=2026-02-03").json
    assert body["station"] == "wx1" and body["days_with_data"] == 2 and body["heating_base"] == 18.0
    assert body["rows"][0]["hdd"] == pytest.approx(18.0 - day_temperature(0), abs=1e-5)
    assert body["hdd"] == pytest.approx(36.0 - day_temperature(0) - day_temperature(1), abs=1e-5)
    assert client.get("/api/v1/weather?station=nowhere").json["error"]["field"] == "station"


def test_comparison_at_the_base_weather(weather_app) -> None:
    client = weather_app.test_client()
    cmp = "/api/v1/analysis/compare?entity=park&start=2026-03-01&end=2026-03-08&base=previous"
    before = client.get(cmp).json["normalised"]
    assert before["weather"] is None and "temperature for 0% of the days of the base period" in before["weather_note"]
    assert client.post("/api/v1/weather", json={"rows": _observations()}).status_code == 201
    body = client.get(cmp).json
    weather = body["normalised"]["weather"]
    assert body["normalised"]["weather_note"] == ""
    assert weather["station"] == "wx1" and weather["model"]["days"] == DAYS - 1  # the fit ends with the current week
    assert weather["model"]["per_hdd"] == pytest.approx(PER_KD_TCE, rel=1e-6)
    assert weather["model"]["per_cdd"] == 0.0 and weather["model"]["r2"] == pytest.approx(1.0)
    hdd = {p: sum(18.0 - day_temperature(d) for d in range(d0, d0 + 7)) for p, d0 in (("base", 21), ("current", 28))}
    assert weather["base_hdd"] == pytest.approx(hdd["base"], abs=1e-4)
    assert weather["current_hdd"] == pytest.approx(hdd["current"], abs=1e-4)
    assert weather["weather_effect"] == pytest.approx(PER_KD_TCE * (hdd["current"] - hdd["base"]), rel=1e-5)
    # the raw change is all weather: at the base week's weather nothing changed
    assert abs(body["total"]["change"]) > 0.5
    assert weather["normalised_current"] == pytest.approx(body["total"]["base"], rel=1e-6)
    assert weather["normalised_change"] == pytest.approx(0.0, abs=1e-4)
