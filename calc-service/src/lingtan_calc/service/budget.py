"""Energy and carbon budgets in the running service (docs/budget.md).

Plans live in SQL (:mod:`lingtan_calc.adapters.budget_store`); their standing is computed from the
accounted day totals (``acc_totals``) with the plan's dual-control counting, and written each day
as the ``budget_*`` series (docs/schema.md) so that Grafana charts and alerts on them. The
warnings of :mod:`lingtan_calc.core.budget.alerts` are evaluated in the same daily pass, right
after the forecasts, stored (:mod:`lingtan_calc.adapters.warning_store`) and sent through the
notifier (:mod:`lingtan_calc.service.warning_notify`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import pandas as pd

from lingtan.series import line
from lingtan_calc.adapters import budget_store, warning_store
from lingtan_calc.adapters.energy_reads import _frame, intensity_rows, totals_rows
from lingtan_calc.adapters.forecast_series import write_forecast_lines
from lingtan_calc.core.budget import alerts, tracking
from lingtan_calc.core.budget.plans import KINDS
from lingtan_calc.core.forecast import outturn as outturn_model
from lingtan_calc.service.forecast import entities

log = logging.getLogger(__name__)
TZ = "Asia/Shanghai"
RULES = {"budget_used", "budget_projected", "intensity_above_target", "co2_above_forecast"}
#: one evaluation at a time (the daily pass and POST /api/v1/warnings/evaluate may meet): a warning is one row
_EVALUATING = threading.Lock()


def entity_name(svc, entity: str) -> str:
    """The display name of the park or an enterprise."""
    names = {e.id: e.name for e in svc.park.enterprises}
    return names.get(entity, svc.park.park.name if entity == "park" else entity)


def daily_counted(svc, entity: str, kind: str, counting: dict[str, str], start: pd.Timestamp,
                  end: pd.Timestamp) -> pd.Series:
    """What a budget of ``kind`` counts per local day of ``[start, end)`` [tce/d or tCO₂/d]."""
    fields = tracking.totals_fields(kind, counting)
    frame = totals_rows(svc.client, svc.park.park.id, "day", start, end, entity, fields, "dangliang")
    if frame.empty:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz=TZ))
    return tracking.counted(frame.set_index("time"), kind, counting)


def intensity_standing(svc, plan: budget_store.BudgetPlanRow, now: pd.Timestamp) -> list[dict[str, Any]]:
    """Each intensity target of the plan against the year to date (Σ numerator ÷ Σ denominator of its months)."""
    if not plan.targets:
        return []
    year_start = pd.Timestamp(year=plan.year, month=1, day=1, tz=TZ)
    end = min(pd.Timestamp(now).tz_convert(TZ), year_start + pd.DateOffset(years=1))
    rows = intensity_rows(svc.client, svc.park.park.id, "month", year_start, end + pd.Timedelta(hours=1), plan.entity)
    out = []
    for target in plan.targets:
        product = rows["product"].fillna("").astype(str)
        mine = rows[(rows["indicator"] == target["indicator"]) & (product == target.get("product", ""))]
        num, den = float(mine["numerator"].sum()), float(mine["denominator"].sum())
        value = num / den if den > 0 else math.nan
        unit = str(mine["unit"].iloc[0]) if len(mine) else ""
        out.append({**target, "value": value, "numerator": num, "denominator": den, "months": int(len(mine)),
                    "unit": unit, "label": f"{plan.year}", "ratio": value / target["target"] if den > 0 else math.nan})
    return out


def standing(svc, plan: budget_store.BudgetPlanRow, now: pd.Timestamp) -> dict[str, Any]:
    """The plan's year and current month (plan, actual, projected, remaining), its months, the
    dynamic re-spread of the rest of the year, and its intensity targets."""
    now = pd.Timestamp(now).tz_convert(TZ)
    year_start = pd.Timestamp(year=plan.year, month=1, day=1, tz=TZ)
    if now < year_start:
        return {"plan": budget_store.plan_dict(plan), "periods": [], "months": [], "respread": None,
                "intensities": [], "note": f"the {plan.year} budget year has not started"}
    start = year_start - pd.Timedelta(days=outturn_model.FIT_DAYS)
    end = min(now.normalize() + pd.Timedelta(days=1), year_start + pd.DateOffset(years=1))
    daily = daily_counted(svc, plan.entity, plan.kind, plan.counting, start, end)
    periods = tracking.track(plan.annual, plan.monthly, daily, now, plan.year)
    # a platform that went live during the year has no accounted days before it: say from when it counts
    counted_days = daily[(daily.index >= year_start) & (daily != 0)]
    for row in periods:
        row["issued"] = now.isoformat()
        row["accounted_from"] = counted_days.index[0].date().isoformat() if len(counted_days) else None
    months = tracking.by_month(plan.monthly, daily, plan.year)
    respread, note = None, ""
    if now < year_start + pd.DateOffset(years=1):
        try:
            respread = tracking.respread(plan.annual, plan.monthly, months["actual"].tolist(), now.month)
        except ValueError as exc:
            note = str(exc)
    return {"plan": budget_store.plan_dict(plan), "periods": periods,
            "months": [{"month": t.strftime("%Y-%m"), "plan": float(r.plan), "actual": float(r.actual)}
                       for t, r in months.iterrows()],
            "respread": respread, "respread_note": note or None, "intensities": intensity_standing(svc, plan, now)}


def _budget_lines(park_id: str, plan: budget_store.BudgetPlanRow, st: dict[str, Any], day: pd.Timestamp) -> list[str]:
    tags = {"park": park_id, "entity": plan.entity, "kind": plan.kind}
    lines = [line("budget_plan", {**tags, "period": "year"}, {"plan": plan.annual, "version": plan.version},
                  pd.Timestamp(year=plan.year, month=1, day=1, tz=TZ).value)]
    for i, value in enumerate(plan.monthly):
        start = pd.Timestamp(year=plan.year, month=i + 1, day=1, tz=TZ)
        lines.append(line("budget_plan", {**tags, "period": "month"}, {"plan": float(value), "version": plan.version},
                          start.value))
    for row in st["periods"]:
        fields = {k: float(row[k]) for k in ("plan", "actual", "projected", "lower", "upper", "remaining",
                                             "remaining_per_day", "used_share", "projected_share", "days_left")
                  if math.isfinite(row[k])}
        fields["version"] = plan.version
        lines.append(line("budget_tracking", {**tags, "period": row["period"]}, fields, day.value))
    for t in st["intensities"]:
        if math.isfinite(t["value"]):
            lines.append(line("budget_intensity", {"park": park_id, "entity": plan.entity, "indicator": t["indicator"],
                                                   "product": t.get("product") or "-", "period": "year"},
                              {"value": t["value"], "target": float(t["target"]), "ratio": t["ratio"]},
                              day.value))
    return lines


def _plan_warnings(svc, plan: budget_store.BudgetPlanRow, st: dict[str, Any]) -> list[dict[str, Any]]:
    name, unit = entity_name(svc, plan.entity), KINDS[plan.kind]
    found = []
    for row in st["periods"]:
        found += alerts.used(plan.entity, name, plan.kind, unit, row)
        found += alerts.projected(plan.entity, name, plan.kind, unit, row)
    for t in st["intensities"]:
        found += alerts.intensity(plan.entity, name, t, t)
    return found


def day_forecast(svc, entity: str, day: pd.Timestamp) -> dict[str, Any] | None:
    """The CO₂ forecast issued for ``day`` (the day-end outturn of the forecast pass), else one computed now
    from the days before it; None without two weeks of history."""
    where = (f"\"park\" = '{svc.park.park.id}' AND \"entity\" = '{entity}' AND \"quantity\" = 'co2_t' "
             "AND \"period\" = 'day'")
    stored = _frame(svc.client, "forecast_outturn", ["projected", "lower", "upper"], ["model"], where, day,
                    day + pd.Timedelta(days=1), missing=None)
    if len(stored):
        first = stored.sort_values("time").iloc[0]
        return {"model": str(first["model"]), "issued": first["time"].isoformat(), "projected": float(first["projected"]),
                "lower": float(first["lower"]), "upper": float(first["upper"])}
    history = totals_rows(svc.client, svc.park.park.id, "day", day - pd.Timedelta(days=outturn_model.FIT_DAYS), day,
                          entity, ["total_tco2"], "dangliang")
    try:
        fig = outturn_model.outturn(0.0, history.set_index("time")["total_tco2"],
                                    outturn_model.remaining_days(day, day + pd.Timedelta(days=1)))
    except ValueError:
        return None
    return {"model": "daily_workday", "issued": f"{day.isoformat()} (computed at the check: none was issued)",
            "projected": fig["projected"], "lower": fig["lower"], "upper": fig["upper"]}


def co2_check(svc, entity: str, day: pd.Timestamp) -> tuple[list[dict[str, Any]], list[str]]:
    """The warning (if any) and the ``forecast_check`` line of ``entity``'s CO₂ on ``day`` against its forecast."""
    actual = totals_rows(svc.client, svc.park.park.id, "day", day, day + pd.Timedelta(hours=1), entity,
                         ["total_tco2"], "dangliang")
    forecast = day_forecast(svc, entity, day)
    if actual.empty or forecast is None:
        return [], []
    value = float(actual["total_tco2"].iloc[0])
    found = alerts.co2_day(entity, entity_name(svc, entity), day.date().isoformat(), value, forecast)
    threshold = alerts.co2_threshold(forecast)
    fields = {"actual": value, "forecast": forecast["projected"], "upper": forecast["upper"], "threshold": threshold}
    if threshold > 0:
        fields["ratio"] = value / threshold
    check = line("forecast_check", {"park": svc.park.park.id, "entity": entity, "quantity": "co2_t", "period": "day"},
                 fields, day.value)
    return found, [check]


def evaluate(svc, day: pd.Timestamp | None = None, now: pd.Timestamp | None = None) -> dict[str, Any]:
    """The daily budget pass: every active plan of the year's standing, written; every warning evaluated."""
    now = pd.Timestamp.now(tz=TZ) if now is None else pd.Timestamp(now).tz_convert(TZ)
    day = (now if day is None else pd.Timestamp(day).tz_convert(TZ)).normalize()
    started, lines = time.perf_counter(), []
    found: dict[str, list[dict[str, Any]]] = {e: [] for e in entities(svc)}
    with svc.sessions() as s:
        plans = budget_store.active_plans(s, year=now.year)
    for plan in plans:
        st = standing(svc, plan, now)
        lines += _budget_lines(svc.park.park.id, plan, st, day)
        found.setdefault(plan.entity, []).extend(_plan_warnings(svc, plan, st))
    for entity in entities(svc):
        warned, checked = co2_check(svc, entity, day - pd.Timedelta(days=1))
        found[entity] += warned
        lines += checked
    write_forecast_lines(svc.client, lines)
    counts = {"opened": 0, "updated": 0, "escalated": 0, "resolved": 0}
    with _EVALUATING, svc.sessions() as s:
        for entity, warnings in found.items():
            for k, v in warning_store.store_evaluation(s, entity, RULES, warnings, bool(svc.settings.notify_url)).items():
                counts[k] += v
    summary = {"day": day.isoformat(), "plans": len(plans), "lines": len(lines), "warnings": counts,
               "seconds": round(time.perf_counter() - started, 3)}
    log.info("budgets and warnings for %s: %d plans, %s, %.1f s", day.date(), len(plans), counts, summary["seconds"])
    return summary
