"""What a budget counts, where it stands, and where it is heading (docs/budget.md §2–§3).

* :func:`counted`: the figure a budget counts per period, from the accounted totals, with the
  dual-control exclusions of the plan (能耗双控: new renewables and feedstock out of the energy
  total; 碳排放双控: scope 2 location- or market-based). The policies and their sources are in
  ``data/budget/dual_control.yaml``.
* :func:`track`: the year's and the current month's plan, actual to date, projected outturn
  (actual plus the daily-model forecast of the rest, with its 80 % interval:
  :mod:`lingtan_calc.core.forecast.outturn`), remaining budget and remaining budget per day:
  the daily dynamic adjustment (动态调整) of standard §5.4.
* :func:`respread`: the year's remaining budget spread over the months still to come in
  proportion to their allocations, the reallocation a planner would propose after a heavy or a
  light start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lingtan_calc.core.forecast import outturn as outturn_model

TZ = "Asia/Shanghai"


@cache
def dual_control() -> dict[str, Any]:
    """The shipped dual-control policy file (``data/budget/dual_control.yaml``)."""
    text = resources.files("lingtan_calc").joinpath("data/budget/dual_control.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def default_counting(kind: str) -> dict[str, str]:
    """The policy's default counting of a ``kind`` (energy, carbon) budget."""
    policy = dual_control()
    if kind == "energy":
        return {name: spec["default"] for name, spec in policy["energy"]["exclusions"].items()}
    return {"scope2": policy["carbon"]["default_scope2"]}


def totals_fields(kind: str, counting: Mapping[str, str]) -> list[str]:
    """The ``acc_totals`` fields :func:`counted` reads for a budget of ``kind`` counted as ``counting``."""
    policy = dual_control()
    if kind == "energy":
        return [policy["energy"]["counts"], *(spec["quantity"] for name, spec in policy["energy"]["exclusions"].items()
                                              if counting.get(name) == "exclude")]
    return [policy["carbon"]["counts"][counting.get("scope2", policy["carbon"]["default_scope2"])]]


def counted(totals: pd.DataFrame, kind: str, counting: Mapping[str, str]) -> pd.Series:
    """The figure the budget counts per row of ``totals`` [tce or tCO₂].

    Parameters
    ----------
    totals : pandas.DataFrame
        ``acc_totals`` rows (one per period), with the fields of :func:`totals_fields`.
    kind : str
        ``energy`` (comprehensive energy less the excluded quantities) or ``carbon``.
    counting : mapping
        ``renewables`` and ``feedstock``: ``include`` or ``exclude`` (energy); ``scope2``:
        ``location`` or ``market`` (carbon).
    """
    fields = totals_fields(kind, counting)
    missing = [f for f in fields if f not in totals]
    if missing:
        raise KeyError(f"acc_totals rows lack {missing}")
    out = totals[fields[0]].astype(float).copy()
    for excluded in fields[1:]:
        out = out - totals[excluded].astype(float).fillna(0.0)
    return out


def _period_end(start: pd.Timestamp, period: str) -> pd.Timestamp:
    return start + (pd.DateOffset(years=1) if period == "year" else pd.DateOffset(months=1))


def _projection(to_date: float, history: pd.Series, now: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    """Actual plus the forecast of the rest; without two weeks of history the projection is unknown."""
    remaining = outturn_model.remaining_days(now, end) if now < end else pd.Series(dtype=float)
    if remaining.empty:  # the period is over: the outturn is what was counted
        return {"actual_to_date": to_date, "forecast_rest": 0.0, "projected": to_date, "lower": to_date,
                "upper": to_date, "sd": 0.0, "model": "final", "days_left": 0.0}
    try:
        fig = outturn_model.outturn(to_date, history, remaining)
        return {**fig, "model": "daily_workday", "days_left": float(remaining.sum())}
    except ValueError as exc:
        return {"actual_to_date": to_date, "forecast_rest": math.nan, "projected": math.nan, "lower": math.nan,
                "upper": math.nan, "sd": math.nan, "model": "none", "days_left": float(remaining.sum()),
                "note": str(exc)}


def track(annual: float, monthly: Sequence[float], daily: pd.Series, now: pd.Timestamp, year: int) -> list[dict]:
    """The year's and the current month's standing of a budget.

    Parameters
    ----------
    annual : float
        The annual cap [tce or tCO₂].
    monthly : sequence of 12 floats
        The monthly allocations [tce or tCO₂].
    daily : pandas.Series
        Counted per local day [tce/d or tCO₂/d], index tz-aware local midnights, from at least
        56 days before the period through today (today's partial figure included).
    now : pandas.Timestamp
        The evaluation time; the year must have started.
    year : int
        The budget year.

    Returns
    -------
    list of dict
        One per period (``year``, then the current ``month`` while the year runs): ``period``,
        ``period_start``, ``plan``, ``actual``, ``projected``, ``lower``, ``upper``,
        ``forecast_rest``, ``remaining`` (plan − actual), ``days_left``, ``remaining_per_day``
        (NaN once the period is over), ``used_share`` and ``projected_share`` [-], ``model``.
    """
    now = pd.Timestamp(now).tz_convert(TZ)
    year_start = pd.Timestamp(year=year, month=1, day=1, tz=TZ)
    if now < year_start:
        raise ValueError(f"the {year} budget year has not started at {now}")
    today = now.normalize()
    history = daily[daily.index < today]
    periods = [("year", year_start, float(annual))]
    if now < _period_end(year_start, "year"):
        month_start = today.replace(day=1)
        periods.append(("month", month_start, float(monthly[month_start.month - 1])))
    rows = []
    for period, start, plan in periods:
        end = _period_end(start, period)
        to_date = float(daily[(daily.index >= start) & (daily.index < end)].sum())
        fig = _projection(to_date, history, now, end)
        days_left = fig["days_left"]
        rows.append({"period": period, "period_start": start, "plan": plan, "actual": to_date,
                     "projected": fig["projected"], "lower": fig["lower"], "upper": fig["upper"],
                     "forecast_rest": fig["forecast_rest"], "remaining": plan - to_date, "days_left": days_left,
                     "remaining_per_day": (plan - to_date) / days_left if days_left > 0 else math.nan,
                     "used_share": to_date / plan if plan > 0 else math.nan,
                     "projected_share": fig["projected"] / plan if plan > 0 else math.nan,
                     "model": fig["model"], **({"note": fig["note"]} if "note" in fig else {})})
    return rows


def by_month(monthly: Sequence[float], daily: pd.Series, year: int) -> pd.DataFrame:
    """Plan and actual of each month of the year [tce or tCO₂] (index: month starts)."""
    starts = pd.date_range(pd.Timestamp(year=year, month=1, day=1, tz=TZ), periods=12, freq="MS")
    in_year = daily[(daily.index >= starts[0]) & (daily.index < _period_end(starts[0], "year"))]
    actual = in_year.groupby(in_year.index.month).sum().reindex(range(1, 13), fill_value=0.0)
    return pd.DataFrame({"plan": np.asarray(monthly, float), "actual": actual.to_numpy(float)}, index=starts)


def respread(annual: float, monthly: Sequence[float], actual_by_month: Sequence[float], month: int) -> list[float]:
    """Monthly allocations after the dynamic adjustment [tce or tCO₂].

    The months before ``month`` (1–12, the current month) are set to what they used (none when
    negative); the year's
    remaining budget (``annual − Σ`` their actual) is spread over ``month`` and the later months
    in proportion to their allocations (equally when those are all zero). The result adds up to
    ``annual``. When the months over have used more than the whole cap, no reallocation can
    cover it (only a revision of the cap can) and ValueError says so.
    """
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is not 1 to 12")
    plan = np.asarray(monthly, float)
    # a month an entity supplied more than it took (a negative net figure) used none of the budget
    past = np.clip(np.asarray(actual_by_month, float)[: month - 1], 0.0, None)
    left = float(annual) - math.fsum(past.tolist())
    if left < 0:
        raise ValueError(f"the months before month {month} used {math.fsum(past.tolist()):.6g}, more than the annual "
                         f"{float(annual):.6g}: only a revision of the cap can cover it")
    ahead = plan[month - 1:]
    weights = ahead / ahead.sum() if ahead.sum() > 0 else np.full(len(ahead), 1.0 / len(ahead))
    out = [*past.tolist(), *(left * weights).tolist()]
    out[-1] = max(0.0, float(annual) - math.fsum(out[:-1]))  # the remainder: ±1e-12 of rounding at most
    return [float(v) for v in out]
