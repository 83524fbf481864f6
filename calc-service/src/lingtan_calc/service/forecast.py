"""The forecasts the calc-service issues, verifies and backtests (docs/forecast.md).

Once a day, in the daily pass after 00:15, the service issues from the local midnight (the
origin) for every entity (the park and each enterprise):

* the electric load and the comprehensive energy for the next 48 hours, hourly, with the
  dynamic harmonic regression (:class:`~lingtan_calc.core.forecast.models.HarmonicArima`) and
  previous-week persistence beside it (the reference every skill is measured against);
* each PV and wind meter's output for the same 48 hours;
* the day-end, month-end and year-end outturn of energy [tce] and CO₂ [t] with their 80 %
  intervals (the day's is the forecast a day's CO₂ warning compares with, docs/budget.md §4);

and it verifies the day-ahead forecasts it issued over the last 7 and 28 days against what was
then counted (``forecast_skill``, kind ``verification``). Origins missed while the service was
down are issued late, from the history before them, for up to :data:`CATCH_UP_DAYS` days, so
that verification has no hole after an outage or a backfill.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from lingtan.errors import ApiError
from lingtan.park.carriers import Carrier
from lingtan_calc.adapters import forecast_series as fs
from lingtan_calc.adapters.energy_reads import totals_rows
from lingtan_calc.core.accounting.boundary import PARK_ENTITY
from lingtan_calc.core.forecast import outturn as outturn_model
from lingtan_calc.core.forecast import renewables
from lingtan_calc.core.forecast.backtest import rolling_origin
from lingtan_calc.core.forecast.metrics import scores
from lingtan_calc.core.forecast.models import Forecaster, HarmonicArima, Persistence
from lingtan_calc.service.engine import next_start, period_start

log = logging.getLogger(__name__)
TZ = "Asia/Shanghai"
#: hours ahead of the origin each issue covers (today and tomorrow), and the day-ahead part scored
HORIZON_H, DAY_AHEAD_H = 48, 24
#: days of history read for a fit (the harmonic model's 56-day window plus a margin)
HISTORY_DAYS = 63
CATCH_UP_DAYS = 7
VERIFY_WINDOWS_D = (7, 28)
#: the fewest hours of history per model (two whole weeks for the regression's weekly shape)
MIN_HOURS = {"harmonic_arima": 14 * 24, "persistence_week": 7 * 24 + 1, "persistence_day": 2 * 24}
#: what each target reads and writes
TARGETS = {"load": ("forecast_load", "electricity [kW]"), "energy": ("forecast_energy", "energy [tce/h]")}
FORECAST_GENERATION_ROLES = ("pv", "wind")


class NoHistory(ApiError):
    """An entity, meter or target without enough history for any model (422, names what is missing)."""

    def __init__(self, message: str, field: str = "entity"):
        super().__init__(422, "no_history", message, field)


def entities(svc) -> list[str]:
    return [PARK_ENTITY, *(e.id for e in svc.park.enterprises)]


def check_entity(svc, entity: str) -> str:
    if entity not in entities(svc):
        raise ApiError(404, "unknown_entity", f"entity {entity!r} is not 'park' or an enterprise of the park "
                                              f"({', '.join(entities(svc))})", "entity")
    return entity


def history(svc, entity: str, target: str, origin: pd.Timestamp, days: int = HISTORY_DAYS) -> pd.Series:
    """The target's hourly history of the entity before ``origin`` (NaN where an hour is not accounted)."""
    start = origin - pd.Timedelta(days=days)
    if target == "load":
        return fs.hourly_load(svc.client, svc.park.park.id, entity, start, origin)
    if target == "energy":
        return fs.hourly_totals(svc.client, svc.park.park.id, entity, "comprehensive_tce", start, origin)
    raise ApiError(400, "bad_target", f"target {target!r} is not one of {', '.join(TARGETS)}", "target")


def models_for(series: pd.Series, what: str) -> list[Forecaster]:
    """The models the history supports, best first: the regression from two weeks, else persistence."""
    hours = int(series.notna().sum())
    if hours < MIN_HOURS["persistence_day"]:
        raise NoHistory(f"{what} has {hours} hours of history; a forecast needs at least "
                        f"{MIN_HOURS['persistence_day']} (two days)")
    chosen: list[Forecaster] = []
    if hours >= MIN_HOURS["harmonic_arima"]:
        chosen.append(HarmonicArima())
    chosen.append(Persistence(168) if hours >= MIN_HOURS["persistence_week"] else Persistence(24))
    return chosen


def forecast_target(svc, entity: str, target: str, origin: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """model name → hourly forecast (mean, lower, upper) of ``HORIZON_H`` hours from ``origin``."""
    series = history(svc, entity, target, origin)
    what = f"entity {entity} {TARGETS[target][1]}"
    future = pd.date_range(origin, periods=HORIZON_H, freq="h")
    return {m.name: m.fit(series).forecast(future) for m in models_for(series, what)}


def forecast_generation(svc, meter_id: str, role: str, origin: pd.Timestamp) -> pd.DataFrame:
    """One PV or wind meter's output forecast for ``HORIZON_H`` hours from ``origin`` [kW]."""
    start = origin - pd.Timedelta(days=renewables.SCALE_DAYS)
    series = fs.hourly_generation(svc.client, svc.park.park.id, meter_id, start, origin)
    if int(series.notna().sum()) < MIN_HOURS["persistence_day"]:
        raise NoHistory(f"meter {meter_id} has {int(series.notna().sum())} hours of output history; "
                        f"a forecast needs at least {MIN_HOURS['persistence_day']}", "meter")
    future = pd.date_range(origin, periods=HORIZON_H, freq="h")
    if role == "wind":
        return renewables.wind_day_ahead(series.dropna(), future)
    loc = svc.park.park.location
    ghi_hist = renewables.clearsky_ghi(series.index, loc.latitude, loc.longitude, loc.altitude)
    ghi_future = renewables.clearsky_ghi(future, loc.latitude, loc.longitude, loc.altitude)
    return renewables.pv_day_ahead(series.dropna(), ghi_hist, ghi_future)


def generation_meters(svc) -> list[tuple[str, str]]:
    """(meter id, role) of every PV and wind meter of the park."""
    out = []
    for enterprise in svc.park.enterprises:
        for unit in enterprise.units:
            for meter in unit.meters:
                roles = {p.role.value for p in meter.points if p.role is not None} & set(FORECAST_GENERATION_ROLES)
                if meter.carrier is Carrier.electricity and roles:
                    out.append((meter.id, sorted(roles)[0]))
    return out


def outturns(svc, entity: str, now: pd.Timestamp) -> list[tuple[str, str, pd.Timestamp, dict[str, float]]]:
    """(quantity, period, period start, figures) of the day-end, month-end and year-end energy and CO₂."""
    park_id = svc.park.park.id
    today = now.tz_convert(TZ).normalize()
    fields = {"energy_tce": "comprehensive_tce", "co2_t": "total_tco2"}
    days = totals_rows(svc.client, park_id, "day", today - pd.Timedelta(days=outturn_model.FIT_DAYS), today,
                       entity, list(fields.values()), "dangliang").set_index("time")
    out = []
    for period in ("day", "month", "year"):
        first = period_start(now, period)
        to_date = totals_rows(svc.client, park_id, period, first, first + pd.Timedelta(hours=1), entity,
                              list(fields.values()), "dangliang")
        remaining = outturn_model.remaining_days(now, next_start(first, period))
        for quantity, field in fields.items():
            done = float(to_date[field].sum()) if len(to_date) else 0.0
            daily = days[field] if field in days else pd.Series(dtype=float)
            try:
                out.append((quantity, period, first, outturn_model.outturn(done, daily, remaining)))
            except ValueError as exc:
                raise NoHistory(f"entity {entity} {quantity}: {exc}") from None
    return out


def issue(svc, origin: pd.Timestamp, *, now: pd.Timestamp | None = None, extras: bool = True,
          latest: bool = True) -> dict[str, Any]:
    """Issue every forecast from ``origin`` (a local midnight); ``extras``: also generation and outturn;
    ``latest``: also as the newest forecast of its hours (not for an origin issued late).

    Returns what was written and, per entity and target, why a forecast was left out.
    """
    origin = pd.Timestamp(origin).tz_convert(TZ)
    now = pd.Timestamp.now(tz=TZ) if now is None else pd.Timestamp(now).tz_convert(TZ)
    park_id, started = svc.park.park.id, time.perf_counter()
    lines: list[str] = []
    skipped: list[dict[str, str]] = []
    for entity in entities(svc):
        for target, (measurement, _) in TARGETS.items():
            try:
                for model, frame in forecast_target(svc, entity, target, origin).items():
                    tags = {"park": park_id, "entity": entity, "model": model, "horizon": "day_ahead"}
                    lines += fs.hourly_lines(measurement, tags, frame, origin, latest)
            except NoHistory as exc:
                skipped.append({"entity": entity, "target": target, "reason": exc.message})
        if extras:
            try:
                for quantity, period, first, figures in outturns(svc, entity, now):
                    lines.append(fs.outturn_line(park_id, entity, quantity, period, first, "daily_workday",
                                                 figures, now))
            except NoHistory as exc:
                skipped.append({"entity": entity, "target": "outturn", "reason": exc.message})
    if extras:
        for meter_id, role in generation_meters(svc):
            try:
                frame = forecast_generation(svc, meter_id, role, origin)
                model = "clearsky_persistence" if role == "pv" else "persistence_climatology"
                tags = {"park": park_id, "meter": meter_id, "role": role, "model": model, "horizon": "day_ahead"}
                lines += fs.hourly_lines("forecast_generation", tags, frame, origin)
            except (NoHistory, ValueError) as exc:
                skipped.append({"entity": meter_id, "target": "generation", "reason": str(exc)})
    fs.write_forecast_lines(svc.client, lines)
    return {"issued": fs.issued_tag(origin), "lines": len(lines), "skipped": skipped,
            "seconds": round(time.perf_counter() - started, 3)}


def issued_origins(svc) -> set[str]:
    """The ``issued`` tags of the park's archived load forecasts."""
    q = (f'SHOW TAG VALUES FROM "{svc.client.database}"."{fs.RP}"."forecast_load" WITH KEY = "issued" '
         f"WHERE \"entity\" = '{PARK_ENTITY}'")
    return {r["value"] for r in svc.client.rows(q) if r.get("value") != fs.LATEST}


def verify(svc, now: pd.Timestamp) -> list[dict[str, Any]]:
    """Score the day-ahead forecasts issued over the last 7 and 28 days; write and return the scores."""
    today = pd.Timestamp(now).tz_convert(TZ).normalize()
    park_id, rows, lines = svc.park.park.id, [], []
    for entity in entities(svc):
        for target, (measurement, _) in TARGETS.items():
            start = today - pd.Timedelta(days=max(VERIFY_WINDOWS_D))
            where = f"\"park\" = '{park_id}' AND \"entity\" = '{entity}'"
            issued = fs.archived_forecast(svc.client, measurement, where, start, today)
            issued = issued[(issued["lead_h"] >= 0) & (issued["lead_h"] < DAY_AHEAD_H)]
            if issued.empty:
                continue
            actual = history(svc, entity, target, today, max(VERIFY_WINDOWS_D))
            by_model = {m: g.set_index("time")["mean"] for m, g in issued.groupby("model")}
            reference = by_model.get("persistence_week")
            for days in VERIFY_WINDOWS_D:
                cut = today - pd.Timedelta(days=days)
                for model, fc in by_model.items():
                    window = fc[fc.index >= cut]
                    ref = reference[reference.index >= cut] if reference is not None and model != "persistence_week" \
                        else None
                    try:
                        figures = scores(actual, window, ref)
                    except ValueError:  # nothing counted yet for these hours
                        continue
                    rows.append({"entity": entity, "target": target, "model": model, "window": f"{days}d", **figures})
                    line = fs.skill_line(park_id, entity, target, model, "verification", f"{days}d", figures, today)
                    if line:
                        lines.append(line)
    fs.write_forecast_lines(svc.client, lines)
    return rows


def backtest(svc, entity: str, target: str, days: int, now: pd.Timestamp | None = None) -> dict[str, Any]:
    """Rolling-origin backtest of the day-ahead forecast over the last ``days`` days (1..120)."""
    check_entity(svc, entity)
    if target not in TARGETS:
        raise ApiError(400, "bad_target", f"target {target!r} is not one of {', '.join(TARGETS)}", "target")
    if not 1 <= days <= 120:
        raise ApiError(400, "bad_days", f"days must be 1 to 120, got {days}", "days")
    today = (pd.Timestamp.now(tz=TZ) if now is None else pd.Timestamp(now).tz_convert(TZ)).normalize()
    series = history(svc, entity, target, today, days + HISTORY_DAYS)
    what = f"entity {entity} {TARGETS[target][1]}"
    first_origin_history = series[series.index < today - pd.Timedelta(days=days)]
    models = models_for(first_origin_history, what + f" before the first backtest day ({days} days back)")
    primary = models[0]
    started = time.perf_counter()
    make = HarmonicArima if isinstance(primary, HarmonicArima) else (lambda: Persistence(primary.lag_h))
    result = rolling_origin(series, make, days, horizon_h=DAY_AHEAD_H)
    figures = result["scores"]
    line = fs.skill_line(svc.park.park.id, entity, target, primary.name, "backtest", f"{days}d", figures, today)
    fs.write_forecast_lines(svc.client, [line] if line else [])
    return {"entity": entity, "target": target, "model": primary.name, "reference": "persistence_week",
            "days": days, "scores": figures, "reference_scores": result["reference_scores"],
            "seconds": round(time.perf_counter() - started, 3)}


def daily(svc, day: pd.Timestamp, now: pd.Timestamp | None = None) -> dict[str, Any]:
    """The daily pass: today's issue (with generation and outturn), missed origins late, then verification."""
    day = pd.Timestamp(day).tz_convert(TZ).normalize()
    done = issued_origins(svc)
    for back in range(CATCH_UP_DAYS, 0, -1):
        origin = day - pd.Timedelta(days=back)
        if fs.issued_tag(origin) not in done:
            issue(svc, origin, extras=False, latest=False)
    summary = issue(svc, day, now=now)
    summary["verification"] = verify(svc, now if now is not None else pd.Timestamp.now(tz=TZ))
    log.info("forecasts issued from %s: %d lines, %d left out, %.1f s", summary["issued"], summary["lines"],
             len(summary["skipped"]), summary["seconds"])
    return summary
