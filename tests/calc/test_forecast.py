"""Forecasts: metrics, models, outturn and PV by hand; issue, verification and the API on a live InfluxDB.

The service test runs the example park for 35 days (2026-03-02 .. 2026-04-06) with a grid import
of 1,000 kWh every hour plus, on Chinese working days only, 600 × (1 − cos(2π h / 24)) / 2 kWh in
local hour h; everything else is constant. The park's electricity is then 1,150 kWh/h + that
(import 1,000 − export 50 + PV 200), enterprise B's a flat 800. Forecasts issue from Monday
2026-04-06, a Qingming public holiday: previous-week persistence repeats Monday 03-30's working
day; the calendar model must know the day is off.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lingtan.park.index import iter_points
from lingtan.park.loader import parse_park
from lingtan.series import PointEncoder
from lingtan.settings import Settings
from lingtan.workdays import is_workday
from lingtan_calc.adapters.energy_reads import totals_rows
from lingtan_calc.core.forecast import metrics, outturn, renewables
from lingtan_calc.core.forecast.backtest import rolling_origin
from lingtan_calc.core.forecast.models import HarmonicArima, Persistence
from lingtan_calc.service import forecast
from lingtan_calc.service.app import create_app
from lingtan_calc.service.scheduler import service_of
from tests.calc.parks import PARK_AB
from tests.calc.test_engine_influx import PER_HOUR

TZ = "Asia/Shanghai"


# --------------------------------------------------------------------------- metrics, by hand

def test_metrics_by_hand() -> None:
    idx = pd.date_range("2026-03-02", periods=4, freq="h", tz=TZ)
    actual = pd.Series([100.0, 200.0, 300.0, 400.0], index=idx)
    fc = pd.Series([110.0, 190.0, 330.0, 400.0], index=idx)  # errors +10, −10, +30, 0
    ref = pd.Series([120.0, 180.0, 340.0, 380.0], index=idx)  # errors +20, −20, +40, −20
    s = metrics.scores(actual, fc, ref)
    assert s["mae"] == pytest.approx(12.5)
    assert s["rmse"] == pytest.approx(math.sqrt(1100 / 4))  # (100 + 100 + 900 + 0) / 4
    assert s["nrmse"] == pytest.approx(math.sqrt(275) / 250)
    assert s["nmbe"] == pytest.approx(30 / (4 * 250))
    assert s["skill"] == pytest.approx(1 - math.sqrt(275) / math.sqrt(2800 / 4))  # (400 + 400 + 1600 + 400) / 4
    assert s["n"] == 4
    with pytest.raises(ValueError, match="no time"):
        metrics.mae(actual, fc.shift(freq="10D"))


def test_persistence_repeats_the_lag_and_its_interval_is_its_own_spread() -> None:
    idx = pd.date_range("2026-03-02", periods=24 * 14, freq="h", tz=TZ)
    y = pd.Series(np.arange(len(idx), dtype=float) % 24 + 5.0 * (idx.day_of_week.to_numpy() >= 5), index=idx)
    model = Persistence(168).fit(y)
    future = pd.date_range(idx[-1] + pd.Timedelta(hours=1), periods=48, freq="h")
    out = model.forecast(future)
    assert out["mean"].tolist() == [y[t - pd.Timedelta(days=7)] for t in future]
    assert (out["upper"] - out["lower"]).max() == 0.0  # the weekly cycle repeats exactly: no spread
    day = Persistence(24).fit(y).forecast(future)
    assert day["mean"].iloc[:24].tolist() == y.iloc[-24:].tolist() and day["mean"].iloc[24:].tolist() == y.iloc[-24:].tolist()
    with pytest.raises(ValueError, match="at least 169"):
        Persistence(168).fit(y.iloc[:100])


def _calendar_load(idx: pd.DatetimeIndex, noise: float = 0.0, seed: int = 3) -> pd.Series:
    hour = idx.hour.to_numpy(float)
    work = is_workday(idx.normalize()).astype(float)
    y = 1150.0 + 600.0 * work * (1.0 - np.cos(2 * np.pi * hour / 24)) / 2
    return pd.Series(y + noise * np.random.default_rng(seed).standard_normal(len(idx)), index=idx)


def test_harmonic_model_knows_the_holiday_persistence_does_not() -> None:
    history_idx = pd.date_range("2026-03-02", "2026-04-06", freq="h", tz=TZ, inclusive="left")
    y = _calendar_load(history_idx)
    future = pd.date_range("2026-04-06", periods=48, freq="h", tz=TZ)  # Qingming Monday, then a workday
    truth = _calendar_load(future)
    harmonic = HarmonicArima().fit(y).forecast(future)
    assert np.allclose(harmonic["mean"], truth, atol=1e-6)
    persistence = Persistence(168).fit(y).forecast(future)
    assert persistence["mean"].iloc[:24].max() == pytest.approx(1750.0)  # last Monday was worked
    assert truth.iloc[:24].max() == pytest.approx(1150.0)


def test_rolling_origin_backtest_beats_persistence_with_noise() -> None:
    idx = pd.date_range("2026-02-23", "2026-04-13", freq="h", tz=TZ, inclusive="left")
    y = _calendar_load(idx, noise=20.0)
    result = rolling_origin(y, HarmonicArima, 7)
    assert result["scores"]["n"] == 7 * 24 and result["reference_scores"]["n"] == 7 * 24
    # persistence misses the holiday (and carries two hours of noise); the model carries its fit error only
    assert result["scores"]["skill"] > 0.5
    assert result["scores"]["nrmse"] < 0.03
    assert abs(result["scores"]["nmbe"]) < 0.01


# --------------------------------------------------------------------------- outturn and PV, by hand

def test_outturn_sums_the_calendar_of_the_rest_of_the_period() -> None:
    days = pd.date_range("2026-03-02", "2026-04-06", freq="D", tz=TZ, inclusive="left")
    daily = pd.Series(np.where(is_workday(days), 30.0, 12.0), index=days)
    now = pd.Timestamp("2026-04-06 06:00", tz=TZ)
    remaining = outturn.remaining_days(now, pd.Timestamp("2026-05-01", tz=TZ))
    assert len(remaining) == 25 and remaining.iloc[0] == pytest.approx(0.75) and remaining.iloc[1:].eq(1.0).all()
    out = outturn.outturn(100.0, daily, remaining)
    # 04-06 off (¾ of it to come), 18 working days and 6 more off days to the month's end
    assert out["forecast_rest"] == pytest.approx(0.75 * 12 + 18 * 30 + 6 * 12)
    assert out["projected"] == pytest.approx(100.0 + 621.0)
    assert out["lower"] == pytest.approx(out["projected"]) and out["upper"] == pytest.approx(out["projected"])


def test_outturn_interval_grows_with_correlated_errors() -> None:
    days = pd.date_range("2026-01-05", periods=56, freq="D", tz=TZ)
    rng = np.random.default_rng(1)
    daily = pd.Series(20.0 + rng.normal(0, 1, 56), index=days)
    rest = pd.Series(1.0, index=pd.date_range("2026-03-02", periods=10, freq="D", tz=TZ))
    model = outturn.fit_daily(daily)
    out = outturn.outturn(0.0, daily, rest)
    # σ² Σᵢ Σⱼ ρ^|i−j| for ten whole days
    expected = model["sigma"] * math.sqrt(sum(model["rho"] ** abs(i - j) for i in range(10) for j in range(10)))
    assert out["sd"] == pytest.approx(expected)
    assert out["upper"] - out["projected"] == pytest.approx(1.2815515655446004 * expected)
    with pytest.raises(ValueError, match="at least 14"):
        outturn.outturn(0.0, daily.iloc[:10], rest)
    with pytest.raises(ValueError, match="finite"):
        outturn.outturn(float("nan"), daily, rest)
    # a net supplier (deliveries above its intake) projects a negative outturn, not an error
    supplier = outturn.outturn(-50.0, -daily, rest)
    assert supplier["projected"] == pytest.approx(-50.0 - out["forecast_rest"])


def test_pv_forecast_is_clear_sky_times_the_recent_clearness() -> None:
    idx = pd.date_range("2026-05-01", periods=24 * 10, freq="h", tz=TZ)
    ghi = renewables.clearsky_ghi(idx, 31.5, 120.3)
    assert ghi.max() > 700 and ghi.iloc[0] == 0.0  # a May noon, and midnight
    history = 0.5 * ghi * np.where(idx.day >= 8, 0.6, 1.0)  # 500 kW per 1000 W/m²; the last three days hazy
    future = pd.date_range("2026-05-11", periods=24, freq="h", tz=TZ)
    ghi_future = renewables.clearsky_ghi(future, 31.5, 120.3)
    out = renewables.pv_day_ahead(history, ghi, ghi_future)
    assert np.allclose(out["mean"], 0.5 * ghi_future * 0.6)
    given = renewables.pv_day_ahead(history, ghi, ghi_future, clearness=0.9)  # a weather feed's clearness
    assert np.allclose(given["mean"], 0.5 * ghi_future * 0.9)
    assert (out["lower"] <= out["mean"] + 1e-9).all() and (out["upper"] >= out["mean"] - 1e-9).all()
    assert out["upper"].max() == pytest.approx(0.5 * ghi_future.max(), rel=1e-6)  # clear days seen: 90th pct is 1
    with pytest.raises(ValueError, match="daytime hours"):
        renewables.pv_day_ahead(history.iloc[:10], ghi.iloc[:10], ghi_future)


def test_wind_forecast_decays_from_the_last_hour_to_the_recent_mean() -> None:
    idx = pd.date_range("2026-05-01", periods=48, freq="h", tz=TZ)
    history = pd.Series(np.r_[np.full(47, 100.0), 500.0], index=idx)
    future = pd.date_range(idx[-1] + pd.Timedelta(hours=1), periods=24, freq="h")
    out = renewables.wind_day_ahead(history, future)
    mean = history.mean()
    assert out["mean"].iloc[0] == pytest.approx(mean + (500 - mean) * math.exp(-1 / 4))
    assert out["mean"].iloc[-1] == pytest.approx(mean + (500 - mean) * math.exp(-24 / 4))


# --------------------------------------------------------------------------- the service

START = pd.Timestamp("2026-03-02", tz=TZ)
DAYS = 35
ORIGIN = START + pd.Timedelta(days=DAYS)  # 2026-04-06, Qingming


def extra_import(t: pd.Timestamp) -> float:
    """The working-day part of the grid import in the hour starting at ``t`` [kWh]."""
    local = t.tz_convert(TZ)
    return 600.0 * float(is_workday([local])[0]) * (1.0 - math.cos(2 * math.pi * local.hour / 24)) / 2


def write_calendar_park(client, park) -> None:
    refs = iter_points(park)
    enc, scale = PointEncoder(refs), {r.id: r.to_canonical for r in refs}
    hours = pd.date_range(START - pd.Timedelta(hours=1), ORIGIN + pd.Timedelta(hours=1), freq="h")
    lines = []
    for pid, per_hour in PER_HOUR.items():
        total = 10_000.0
        for t in hours:
            lines.append(enc.encode(pid, total * scale[pid], t.value))
            total += per_hour + (extra_import(t) if pid == "m-grid.import" and START <= t < ORIGIN else 0.0)
    client.write_lines(lines)


@pytest.fixture
def forecast_app(influx_db, tmp_path):
    for rp, default in (("raw", " DEFAULT"), ("accounting", "")):
        influx_db.query(f'CREATE RETENTION POLICY "{rp}" ON "{influx_db.database}" DURATION INF REPLICATION 1{default}',
                        database="")
    park = parse_park(PARK_AB, Path("ex2.yaml"))
    write_calendar_park(influx_db, park)
    settings = Settings(state_dir=tmp_path, influx_url=influx_db.url, influx_db=influx_db.database,
                        influx_user=influx_db.username, influx_password=influx_db.password,
                        park_file=tmp_path / "ex2.yaml")
    app = create_app(settings, park=park, client=influx_db, start_scheduler=False)
    svc = service_of(app)
    job = svc.submit(START, ORIGIN, "test", "pytest")
    svc._queue.clear()
    svc.run_job(job)
    assert job.state == "done", job.error
    return app


def test_daily_pass_issues_verifies_and_projects(forecast_app) -> None:
    svc = service_of(forecast_app)
    summary = forecast.daily(svc, ORIGIN, now=ORIGIN)
    assert summary["issued"] == "2026-04-06T00:00:00+08:00"
    park_pv = [s for s in summary["skipped"] if s["target"] == "generation"]
    assert park_pv == []  # m-pv has 35 days of output
    future = pd.date_range(ORIGIN, periods=48, freq="h")
    where = "\"park\" = 'ex2' AND \"entity\" = 'park'"
    latest = forecast.fs.latest_forecast(svc.client, "forecast_load", where, ORIGIN, future[-1] + pd.Timedelta(hours=1))
    by_model = {m: g.set_index("time") for m, g in latest.groupby("model")}
    expected = np.array([1150.0 + extra_import(t) for t in future])
    assert np.allclose(by_model["harmonic_arima"]["mean"].to_numpy(), expected, atol=1e-3)
    week_ago = np.array([1150.0 + extra_import(t - pd.Timedelta(days=7)) for t in future])
    assert np.allclose(by_model["persistence_week"]["mean"].to_numpy(), week_ago, atol=1e-6)
    assert by_model["harmonic_arima"]["lead_h"].tolist() == list(range(48))
    b = forecast.fs.latest_forecast(svc.client, "forecast_load", "\"park\" = 'ex2' AND \"entity\" = 'B'", ORIGIN,
                                    future[-1] + pd.Timedelta(hours=1))
    assert np.allclose(b["mean"], 800.0, atol=1e-6)
    # the seven missed origins were issued late and are verified: the calendar model is exact
    verified = {(r["entity"], r["target"], r["model"], r["window"]): r for r in summary["verification"]}
    park = verified[("park", "load", "harmonic_arima", "7d")]
    assert park["n"] == 7 * 24 and park["nrmse"] < 1e-6
    assert forecast.issued_origins(svc) >= {forecast.fs.issued_tag(ORIGIN - pd.Timedelta(days=d)) for d in range(8)}
    # month-end: April so far (5 days) plus the 25 days to come at their calendar (18 working, 7 off)
    tce = {d: float(totals_rows(svc.client, "ex2", "day", pd.Timestamp(d, tz=TZ), pd.Timestamp(d, tz=TZ)
                                + pd.Timedelta(hours=1), "park", ["comprehensive_tce"], "dangliang")
                    ["comprehensive_tce"].iloc[0]) for d in ("2026-03-31", "2026-03-29")}
    april = sum(float(totals_rows(svc.client, "ex2", "day", pd.Timestamp(f"2026-04-0{d}", tz=TZ),
                                  pd.Timestamp(f"2026-04-0{d} 01:00", tz=TZ), "park", ["comprehensive_tce"],
                                  "dangliang")["comprehensive_tce"].iloc[0]) for d in range(1, 6))
    body = forecast_app.test_client().get("/api/v1/forecast/outturn?entity=park").json
    month = next(r for r in body["outturn"] if r["quantity"] == "energy_tce" and r["period"] == "month")
    assert month["actual_to_date"] == pytest.approx(april, rel=1e-6)
    assert month["projected"] == pytest.approx(april + 18 * tce["2026-03-31"] + 7 * tce["2026-03-29"], rel=1e-6)
    assert month["lower"] == pytest.approx(month["projected"], rel=1e-6)  # the calendar explains every day
    assert {(r["quantity"], r["period"]) for r in body["outturn"]} == {
        (q, p) for q in ("energy_tce", "co2_t") for p in ("day", "month", "year")}
    day = next(r for r in body["outturn"] if r["quantity"] == "energy_tce" and r["period"] == "day")
    assert day["projected"] == pytest.approx(tce["2026-03-29"], rel=1e-6)  # 6 April 2026: Qingming holiday


def test_forecast_api_and_its_errors(forecast_app) -> None:
    client = forecast_app.test_client()
    bad = client.get("/api/v1/forecast?entity=nowhere")
    assert bad.status_code == 404 and bad.json["error"]["field"] == "entity"
    assert client.get("/api/v1/forecast?target=heat").json["error"]["field"] == "target"
    too_long = client.post("/api/v1/forecast/backtest", json={"entity": "park", "days": 60})
    assert too_long.status_code == 422 and too_long.json["error"]["code"] == "no_history"
    assert "entity park electricity [kW] before the first backtest day" in too_long.json["error"]["message"]
    assert client.post("/api/v1/forecast/backtest", json={"days": "7"}).json["error"]["field"] == "days"
    assert client.post("/api/v1/forecast/issue", json={"origin": "2026-04-06T03:00"}).json["error"]["field"] == "origin"
    issued = client.post("/api/v1/forecast/issue", json={"origin": "2026-04-06"})
    assert issued.status_code == 201 and issued.json["issued"] == "2026-04-06T00:00:00+08:00"
    assert issued.json["skipped"] == [] and issued.json["lines"] == 6 * 48 * 2 * 2  # 3 entities, 2 targets, 2 models
    body = client.get("/api/v1/forecast?entity=B&start=2026-04-05&end=2026-04-08").json
    assert set(body["models"]) == {"harmonic_arima", "persistence_week"} and body["unit"] == "kW"
    assert [r["mean"] for r in body["models"]["harmonic_arima"]] == pytest.approx([800.0] * 48, abs=1e-6)
    assert len(body["actual"]) == 24 and body["actual"][0] == {"time": "2026-04-05T00:00:00+08:00", "value": 800.0}
