"""Carbon and energy warnings (预警, standard §5.3; docs/budget.md §4): pure rules over the budget
standing, the intensities and the daily forecast.

Each rule returns the warnings that fire now, as dicts with ``rule``, ``subject`` (what the
warning is about, stable between evaluations so that a warning is one row while it lasts),
``level`` (``info``, ``warning``, ``critical``), ``value``, ``threshold``, ``unit``, the
``forecast`` behind it (model, issue time and figures) or None, and a Chinese and English
summary and description naming the entity, the figure, the threshold and the forecast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: budget consumption shares that warn, and their levels (standard §5.3: 80 / 90 / 100 %)
USED_LEVELS: tuple[tuple[float, str], ...] = ((1.0, "critical"), (0.9, "warning"), (0.8, "info"))
#: a day's CO₂ is "far above" its forecast when above both the forecast's 80 % upper bound (by
#: chance one day in ten) and the forecast plus this share: the simulated park's day-to-day
#: production swing is about 7 % (docs/simulator.md), so 20 % above means something changed
CO2_MARGIN = 0.20
KIND_NAMES = {"energy": ("能耗", "energy"), "carbon": ("碳排放", "CO2")}
PERIOD_NAMES = {"year": ("年度", "annual"), "month": ("月度", "monthly")}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:.3g}"


def used(entity: str, name: str, kind: str, unit: str, row: Mapping[str, Any],
         levels: Sequence[tuple[float, str]] = USED_LEVELS) -> list[dict[str, Any]]:
    """Budget consumption (actual to date ÷ plan) at or above the highest share of ``levels`` it reaches."""
    share = row["used_share"]
    if not math.isfinite(share):
        return []
    hit = next(((t, lvl) for t, lvl in sorted(levels, reverse=True) if share >= t), None)
    if hit is None:
        return []
    threshold, level = hit
    kz, ke = KIND_NAMES[kind]
    pz, pe = PERIOD_NAMES[row["period"]]
    label = _label(row)
    return [{
        "rule": "budget_used", "subject": f"{kind}:{row['period']}:{label}", "level": level, "value": share,
        "threshold": threshold, "unit": "-", "forecast": _forecast(row),
        "summary_zh": f"{name} {label} {pz}{kz}预算已用 {_pct(share)}（{_num(row['actual'])} / {_num(row['plan'])} {unit}），"
                      f"达到 {_pct(threshold)} 预警线",
        "summary_en": f"{name} {label} {pe} {ke} budget {_pct(share)} used ({_num(row['actual'])} of "
                      f"{_num(row['plan'])} {unit}), at the {_pct(threshold)} warning line",
        "description_zh": _outlook_zh(row, unit), "description_en": _outlook_en(row, unit),
    }]


def projected(entity: str, name: str, kind: str, unit: str, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Projected outturn above the plan: ``warning``, or ``critical`` when even the interval's lower bound is above."""
    if not math.isfinite(row["projected"]) or row["projected"] <= row["plan"] or row["model"] == "final":
        return []
    level = "critical" if row["lower"] > row["plan"] else "warning"
    kz, ke = KIND_NAMES[kind]
    pz, pe = PERIOD_NAMES[row["period"]]
    label = _label(row)
    over = row["projected"] - row["plan"]
    return [{
        "rule": "budget_projected", "subject": f"{kind}:{row['period']}:{label}", "level": level,
        "value": row["projected"], "threshold": row["plan"], "unit": unit, "forecast": _forecast(row),
        "summary_zh": f"{name} {label} {pz}{kz}预计 {_num(row['projected'])} {unit}，超出预算 {_num(row['plan'])} {unit}"
                      f"（+{_num(over)}）",
        "summary_en": f"{name} {label} {pe} {ke} projected at {_num(row['projected'])} {unit}, above the budget of "
                      f"{_num(row['plan'])} {unit} (+{_num(over)})",
        "description_zh": _outlook_zh(row, unit), "description_en": _outlook_en(row, unit),
    }]


def intensity(entity: str, name: str, target: Mapping[str, Any], actual: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An intensity (year to date: Σ numerator ÷ Σ denominator) above its target."""
    value = actual["value"]
    if not math.isfinite(value) or value <= target["target"]:
        return []
    what = target["indicator"] + (f" {target['product']}" if target.get("product") else "")
    return [{
        "rule": "intensity_above_target", "subject": f"{target['indicator']}:{target.get('product', '')}:{actual['label']}",
        "level": "warning", "value": value, "threshold": float(target["target"]), "unit": actual["unit"],
        "forecast": None,
        "summary_zh": f"{name} {actual['label']} {what} 强度 {value:.4g} {actual['unit']}，高于目标 "
                      f"{target['target']:.4g}（+{_pct(value / target['target'] - 1)}）",
        "summary_en": f"{name} {actual['label']} {what} intensity {value:.4g} {actual['unit']}, above the target "
                      f"{target['target']:.4g} (+{_pct(value / target['target'] - 1)})",
        "description_zh": f"年初至今 {actual['numerator']:.4g} / {actual['denominator']:.4g}，{actual['months']} 个月的生产数据。",
        "description_en": f"Year to date {actual['numerator']:.4g} / {actual['denominator']:.4g}, from "
                          f"{actual['months']} months of production data.",
    }]


def co2_threshold(forecast: Mapping[str, Any]) -> float:
    """The warning line of a day's CO₂ [t]: above the forecast's 80 % upper bound and its mean plus :data:`CO2_MARGIN`."""
    return max(float(forecast["upper"]), float(forecast["projected"]) * (1.0 + CO2_MARGIN))


def co2_day(entity: str, name: str, day: str, actual: float, forecast: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A day's CO₂ far above its day-ahead forecast (see :data:`CO2_MARGIN`)."""
    threshold = co2_threshold(forecast)
    if not math.isfinite(actual) or actual <= threshold:
        return []
    ratio = actual / forecast["projected"] if forecast["projected"] > 0 else math.inf
    return [{
        "rule": "co2_above_forecast", "subject": "co2:day", "level": "warning", "value": actual,
        "threshold": threshold, "unit": "tCO2", "forecast": dict(forecast),
        "summary_zh": f"{name} {day} 碳排放 {_num(actual)} tCO2，远高于预测 {_num(forecast['projected'])} tCO2"
                      f"（{ratio:.2f} 倍）",
        "summary_en": f"{name} CO2 on {day} {_num(actual)} t, far above the forecast of "
                      f"{_num(forecast['projected'])} t ({ratio:.2f}×)",
        "description_zh": f"预测模型 {forecast['model']}，发布于 {forecast['issued']}，80% 区间上限 "
                          f"{_num(forecast['upper'])} tCO2；预警线 {_num(threshold)} tCO2。",
        "description_en": f"Forecast model {forecast['model']}, issued {forecast['issued']}, 80 % upper bound "
                          f"{_num(forecast['upper'])} t; warning line {_num(threshold)} t.",
    }]


def _label(row: Mapping[str, Any]) -> str:
    start = row["period_start"]
    return f"{start.year}" if row["period"] == "year" else f"{start.year}-{start.month:02d}"


def _forecast(row: Mapping[str, Any]) -> dict[str, Any] | None:
    if row["model"] in ("none", "final"):
        return None
    return {"model": row["model"], "issued": row.get("issued", ""), "projected": row["projected"],
            "lower": row["lower"], "upper": row["upper"]}


def _outlook_zh(row: Mapping[str, Any], unit: str) -> str:
    if row["model"] in ("none", "final"):
        return f"剩余预算 {_num(row['remaining'])} {unit}。"
    return (f"预计期末 {_num(row['projected'])} {unit}（80% 区间 {_num(row['lower'])}–{_num(row['upper'])}，模型 "
            f"{row['model']}）；剩余预算 {_num(row['remaining'])} {unit}，剩余 {row['days_left']:.1f} 天，"
            f"日均可用 {_num(row['remaining_per_day'])} {unit}。")


def _outlook_en(row: Mapping[str, Any], unit: str) -> str:
    if row["model"] in ("none", "final"):
        return f"Remaining budget {_num(row['remaining'])} {unit}."
    return (f"Projected {_num(row['projected'])} {unit} at period end (80 % interval {_num(row['lower'])}–"
            f"{_num(row['upper'])}, model {row['model']}); remaining {_num(row['remaining'])} {unit} over "
            f"{row['days_left']:.1f} days, {_num(row['remaining_per_day'])} {unit} per day.")
