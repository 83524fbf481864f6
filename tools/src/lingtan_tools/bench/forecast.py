"""Forecast benchmarks (docs/forecast.md; targets of the forecast issue, §1 and §4).

1. Backtest: the demo park's aggregate electric load, hourly, simulated for 90 days plus the
   model's fit window (the simulator's own rate models, seed 1, no faults), is backtested with
   rolling origins at every local midnight of the last 90 days: day-ahead NRMSE against 12 %,
   skill over previous-week persistence against 10 %, the run time against 5 minutes.
2. Service: a private InfluxDB gets 60 days of the demo park by ``lingtan simulate --backfill``'s
   code path, the calc-service accounts them, and then the day's forecasts for every entity (load
   and energy for the park and each enterprise, every PV and wind meter, the month-end and
   year-end outturns) are issued, then the demo budgets are set and evaluated (docs/budget.md): the
   time of forecasts and budget projections together against 30 s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lingtan.park.carriers import GENERATION_ROLES, Carrier
from lingtan.park.loader import load_park
from lingtan.settings import DEMO_PARK, Settings

TZ = "Asia/Shanghai"
BACKTEST_DAYS, FIT_DAYS = 90, 63


def simulated_park_load(days: int, end: str = "2026-11-01", seed: int = 1) -> pd.Series:
    """The demo park's electricity use per hour [kW]: grid import − export + on-site generation ±
    storage, from the simulator's rate models at an hourly step."""
    from lingtan_tools.simulate.models import ParkRates

    park = load_park(DEMO_PARK)
    index = pd.date_range(end=pd.Timestamp(end, tz=TZ), periods=days * 24 + 1, freq="h")[:-1]
    rates = ParkRates(park, seed=seed, step_s=3600.0)
    chunks: dict = {}
    for i in range(0, len(index), 256):
        for key, values in rates.next_chunk(index[i:i + 256]).items():
            chunks.setdefault(key, []).append(values)
    meters = {m.id: m for e in park.enterprises for u in e.units for m in u.meters}
    load = np.zeros(len(index))
    for (meter_id, channel), parts in chunks.items():
        meter, values = meters[meter_id], np.concatenate(parts)
        if meter.carrier is not Carrier.electricity:
            continue
        roles = {p.role for p in meter.points if p.role is not None}
        if meter.simulation is not None and meter.simulation.model == "grid":
            load += values if channel == "import" else -values if channel == "export" else 0.0
        elif meter.simulation is not None and meter.simulation.model == "storage":
            load += values if channel == "discharge" else -values if channel == "charge" else 0.0
        elif roles & set(GENERATION_ROLES):
            load += values
    return pd.Series(load, index=index)


def run_backtest(days: int = BACKTEST_DAYS) -> dict:
    from lingtan_calc.core.forecast.backtest import rolling_origin
    from lingtan_calc.core.forecast.models import HarmonicArima

    series = simulated_park_load(days + FIT_DAYS)
    started = time.perf_counter()
    result = rolling_origin(series, HarmonicArima, days)
    return {"seconds": time.perf_counter() - started, "scores": result["scores"],
            "reference": result["reference_scores"], "mean_kw": float(series.mean())}


def run_service(days: int = 60) -> dict:
    from lingtan_calc.service import budget, forecast
    from lingtan_calc.service.app import create_app
    from lingtan_calc.service.scheduler import service_of
    from lingtan_tools.bench.stack import bench_stack
    from lingtan_tools.simulate import demo_budgets
    from lingtan_tools.simulate.backfill import backfill

    park = load_park(DEMO_PARK)
    with bench_stack() as stack, tempfile.TemporaryDirectory(prefix="lingtan-fcbench-") as tmp:
        settings = Settings(state_dir=Path(tmp), influx_url=stack.influx.url, influx_db="lingtan",
                            influx_user=stack.user, influx_password=stack.password)
        t0 = time.perf_counter()
        filled = backfill(park, settings, float(days), counter_state=Path(tmp) / "counters.json")
        t1 = time.perf_counter()
        app = create_app(settings, park=park, client=stack.client("lingtan"), start_scheduler=False)
        svc = service_of(app)
        svc.calculator.recalculate(filled.start, filled.end, "benchmark", None)
        t2 = time.perf_counter()
        today = pd.Timestamp.now(tz=TZ).normalize()
        summary = forecast.issue(svc, today)
        t3 = time.perf_counter()
        demo_budgets.seed(_in_process(app), {"park", *(e.id for e in park.enterprises)})
        t4 = time.perf_counter()
        evaluated = budget.evaluate(svc)  # every plan's standing and projection, every warning rule
        t5 = time.perf_counter()
    return {"backfill_s": t1 - t0, "recalc_s": t2 - t1, "issue_s": t3 - t2, "lines": summary["lines"],
            "skipped": summary["skipped"], "readings": filled.lines, "budget_s": t5 - t4,
            "plans": evaluated["plans"], "warnings": evaluated["warnings"]}


def _in_process(app):
    """``call(path, body, method)`` on the calc app itself (what demo_budgets.seed asks of an HTTP client)."""
    client = app.test_client()

    def call(path: str, body: dict | None = None, method: str = "GET") -> dict:
        resp = client.open(path, method=method, json=body, headers={"X-Lingtan-User": "benchmark"})
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status_code}: {resp.get_data(as_text=True)[:300]}")
        return resp.get_json()

    return call


def run_forecast(quick: bool) -> list[dict]:
    bt = run_backtest(14 if quick else BACKTEST_DAYS)
    svc = run_service(20 if quick else 60)
    s, ref = bt["scores"], bt["reference"]
    days = 14 if quick else BACKTEST_DAYS
    return [
        {"benchmark": f"forecast backtest: the demo park's aggregate load, day ahead, rolling origin over {days} days",
         "result": f"{bt['seconds']:.1f} s; NRMSE {s['nrmse']:.1%}, skill {s['skill']:.1%}",
         "target": "≤ 5 min; NRMSE ≤ 12 %, skill ≥ 10 % over previous-week persistence" if not quick else "smoke",
         "pass": bt["seconds"] <= 300 and s["nrmse"] <= 0.12 and s["skill"] >= 0.10,
         "detail": f"harmonic regression + ARMA(2,1) errors, 56-day window; MAE {s['mae']:.0f} kW, NMBE "
                   f"{s['nmbe']:+.2%} on a mean of {bt['mean_kw']:,.0f} kW; previous-week persistence NRMSE "
                   f"{ref['nrmse']:.1%}, MAE {ref['mae']:.0f} kW; {s['n']} hours"},
        {"benchmark": "forecast issue: the demo park's day (load and energy of 6 entities, 16 PV and wind meters, "
                      "month and year outturns)",
         "result": f"{svc['issue_s']:.1f} s", "target": "≤ 30 s", "pass": svc["issue_s"] <= 30 and not svc["skipped"],
         "detail": f"{svc['lines']:,} lines written; left out: {len(svc['skipped'])}; before it: backfill of "
                   f"{svc['readings']:,} readings {svc['backfill_s']:.1f} s, accounting them {svc['recalc_s']:.1f} s"},
        {"benchmark": "forecasts and budget projections: the day's issue plus the budget pass (every demo budget's "
                      "standing and projection, every warning rule, every entity)",
         "result": f"{svc['issue_s'] + svc['budget_s']:.1f} s", "target": "≤ 30 s",
         "pass": svc["issue_s"] + svc["budget_s"] <= 30,
         "detail": f"forecasts {svc['issue_s']:.1f} s, budgets and warnings {svc['budget_s']:.1f} s for "
                   f"{svc['plans']} plans ({svc['warnings']})"},
    ]
