"""The energy analyses of an entity and range, as the calc API answers them and the reports print them.

Each function takes the calc service (park, InfluxDB client, tariffs), reads the accounted rows
at the coarsest stored period the range is aligned to (:func:`granularity`) and returns the
JSON-ready body of its endpoint (docs/analysis.md). Bad input raises
:class:`~lingtan.errors.ApiError` naming the field; a range without data, 404 ``no_data``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lingtan.errors import ApiError
from lingtan_calc.adapters.energy_reads import bought_per_hour, emission_rows, energy_rows
from lingtan_calc.core.analysis.cost import NoTariffError, cost_summary, demand_charge, energy_cost, unpriced
from lingtan_calc.core.analysis.structure import (
    BREAKDOWNS,
    attribute_deliveries,
    compare,
    output_normalised,
    parent_meters,
    pareto,
    structure,
    trend,
)
from lingtan_calc.core.analysis.tariffs import peak_valley_ratio
from lingtan_calc.service.weather import weather_comparison

TZ = "Asia/Shanghai"
#: the peak:valley ratio below which a tariff is reported (发改价格〔2021〕1093号: ≥ 3, or ≥ 4 where the
#: system's peak-valley gap exceeds 40 %)
MIN_PEAK_VALLEY = 3.0
PARETO_LEVELS = {"unit": ["enterprise", "unit_id"], "meter": ["enterprise", "unit_id", "meter"]}
METRIC_UNITS = {"energy": "tce", "co2": "tCO2", "cost": "CNY"}


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON rows: NaN and ±inf become null."""
    clean = frame.replace([np.inf, -np.inf], np.nan).astype(object)
    return clean.where(pd.notna(clean), None).to_dict(orient="records")


def granularity(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """The coarsest stored period both ends of ``[start, end)`` fall on."""
    local = [t.tz_convert(TZ) for t in (start, end)]
    if all(t == t.normalize() and t.day == 1 for t in local):
        return "month"
    if all(t == t.normalize() for t in local):
        return "day"
    if all(t == t.floor("h") for t in local):
        return "hour"
    raise ApiError(400, "bad_range", f"start {start.isoformat()} and end {end.isoformat()} must fall on whole hours", "start")


def energy(svc, entity: str | None, start: pd.Timestamp, end: pd.Timestamp, period: str | None = None) -> pd.DataFrame:
    """Energy rows of an entity (None: each enterprise), deliveries moved to the supplier's meter upstream."""
    rows = energy_rows(svc.client, svc.park.park.id, period or granularity(start, end), start, end, entity)
    return attribute_deliveries(rows, parent_meters(svc.park))


def scope_of(entity: str, by: str) -> str | None:
    """The park broken down by enterprise, unit or meter is the sum of its enterprises' own rows (None): its
    own rows are only the meters on the park boundary, and the enterprises add up to the park exactly."""
    return None if entity == "park" and by in ("enterprise", "unit", "meter") else entity


def no_data(entity: str, start: pd.Timestamp, end: pd.Timestamp) -> ApiError:
    return ApiError(404, "no_data", f"no accounted energy for entity {entity!r} from {start.isoformat()} to "
                    f"{end.isoformat()}: the period is before the first calculation or the meters sent nothing", "start")


def envelope(entity: str, start: pd.Timestamp, end: pd.Timestamp, **body: Any) -> dict[str, Any]:
    return {"entity": entity, "start": start.isoformat(), "end": end.isoformat(), **body}


def check_by(by: str) -> str:
    if by not in BREAKDOWNS:
        raise ApiError(400, "bad_by", f"by {by!r} is not one of {', '.join(BREAKDOWNS)}", "by")
    return by


def structure_body(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, by: str) -> dict[str, Any]:
    rows = energy(svc, scope_of(entity, check_by(by)), start, end)
    if rows.empty:
        raise no_data(entity, start, end)
    out = structure(rows, by)
    return envelope(entity, start, end, by=by, total_tce=float(out["tce"].sum()),
                     units={"tce": "tce", "quantity": "canonical unit of the carrier", "share": "1"}, rows=records(out))


def bought_hours(svc, entity: str | None, start: pd.Timestamp, end: pd.Timestamp, keys: list[str]) -> pd.DataFrame:
    """Hourly energy an entity (None: each enterprise) bought or received (``flow`` input), with ``keys`` kept
    (deliveries are not bought energy, so no row needs moving to the supplier's meter)."""
    return bought_per_hour(svc.client, svc.park.park.id, start, end, entity, keys)


def _tariff_notes(svc, used: set[str]) -> list[dict[str, Any]]:
    return [{"id": t.id, "name": t.name, "source": t.source.model_dump(), "valid_from": str(t.valid_from),
             "valid_to": str(t.valid_to) if t.valid_to else None, "peak_valley_ratio": peak_valley_ratio(t)}
            for t in svc.tariffs if t.id in used]


def cost_body(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    hourly = bought_hours(svc, entity, start, end, [])
    if hourly.empty:
        raise no_data(entity, start, end)
    try:
        costs = energy_cost(hourly, svc.tariffs)
        elec = hourly[hourly["carrier"] == "electricity"].groupby("time")["quantity"].sum()
        demand = demand_charge(elec, entity, svc.tariffs, start, end)
    except NoTariffError as exc:
        raise ApiError(422, "no_tariff", str(exc), "start") from None
    summary = cost_summary(costs, demand)
    notes = _tariff_notes(svc, set(costs["tariff"]) | set(demand["tariff"]))
    warnings = [f"carrier {c} has no price and is not costed" for c in unpriced(hourly, svc.tariffs)]
    warnings += [f"tariff {n['id']}: peak:valley ratio {n['peak_valley_ratio']:.2f} is below {MIN_PEAK_VALLEY:g} "
                 "(发改价格〔2021〕1093号)" for n in notes
                 if n["peak_valley_ratio"] is not None and n["peak_valley_ratio"] < MIN_PEAK_VALLEY]
    return envelope(entity, start, end, total_cost=float(summary["cost"].sum()), currency="CNY",
                     units={"cost": "CNY", "price": "CNY per unit", "quantity": "canonical unit of the carrier",
                            "demand_kw": "kW", "charged": "kW or kVA"},
                     summary=records(summary), bands=records(costs), demand=records(demand), tariffs=notes,
                     warnings=warnings)


def base_range(start: pd.Timestamp, end: pd.Timestamp, base: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The base period of a comparison: ``previous`` (环比) or ``last_year`` (同比)."""
    if base == "last_year":
        return start - pd.DateOffset(years=1), end - pd.DateOffset(years=1)
    if base == "previous":  # the period of the same calendar length just before
        local0, local1 = start.tz_convert(TZ), end.tz_convert(TZ)
        if granularity(start, end) == "month":
            months = (local1.year - local0.year) * 12 + local1.month - local0.month
            return local0 - pd.DateOffset(months=months), local0
        return start - (end - start), start
    raise ApiError(400, "bad_base", f"base {base!r} is not previous or last_year (or give base_start and base_end)", "base")


def _indexed(rows: pd.DataFrame, keys: list[str], field: str) -> pd.Series:
    if rows.empty:  # a period without data: an empty series with the same index levels
        index = pd.MultiIndex.from_arrays([[] for _ in keys], names=keys) if len(keys) > 1 else pd.Index([], name=keys[0])
        return pd.Series(dtype=float, index=index)
    series = rows.groupby(keys)[field].sum()
    series.index = series.index.set_names(keys)
    return series


def compare_body(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, by: str,
                 base: tuple[pd.Timestamp, pd.Timestamp, str]) -> dict[str, Any]:
    """``base`` = (base start, base end, its name: previous, last_year or custom)."""
    b0, b1, name = base
    scope = scope_of(entity, check_by(by))
    current, previous = energy(svc, scope, start, end), energy(svc, scope, b0, b1)
    if current.empty and previous.empty:
        raise no_data(entity, start, end)
    keys = BREAKDOWNS[by]
    out = compare(_indexed(previous, keys, "tce"), _indexed(current, keys, "tce")).reset_index()
    if "carrier" in keys:
        qty = compare(_indexed(previous, keys, "quantity"), _indexed(current, keys, "quantity"))
        out = out.merge(qty.add_prefix("quantity_").reset_index(), on=keys, how="left")
    totals = compare(pd.Series({"total": previous["tce"].sum()}), pd.Series({"total": current["tce"].sum()}))
    return envelope(entity, start, end, by=by, base=name, base_start=b0.isoformat(), base_end=b1.isoformat(),
                     total=records(totals)[0], units={"base": "tce", "current": "tce", "change": "tce",
                                                      "change_ratio": "1", "quantity_*": "canonical unit"},
                     rows=records(out),
                     normalised=_normalised(svc, scope, entity, (b0, b1), (start, end),
                                            float(previous["tce"].sum()), float(current["tce"].sum())))


def _output(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp) -> dict[tuple[str, str], float]:
    """Recorded output per (product, unit) of the range, from the production records of its granularity."""
    frame = getattr(svc.calculator, "production", None)
    kind = {"month": "month", "day": "day"}.get(granularity(start, end))
    if frame is None or frame.empty or kind is None:
        return {}
    f = frame[(frame["entity"] == entity) & (frame["period_type"] == kind) & (frame["period"] >= start)
              & (frame["period"] < end) & frame["quantity"].notna() & (frame["product"] != "")]
    return {k: float(v) for k, v in f.groupby(["product", "product_unit"])["quantity"].sum().items()}


def _normalised(svc, scope: str | None, entity: str, base: tuple, current: tuple, energy_base: float,
                energy_current: float) -> dict:
    """The comparison at the base period's output (one product recorded in both periods) and at its weather."""
    def energy_daily(lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Series:
        rows = energy(svc, scope, lo, hi, period="day")
        today = pd.Timestamp.now(tz=TZ).normalize()  # the day in progress is not a whole day of energy
        return rows[rows["time"] < today].groupby("time")["tce"].sum() if not rows.empty else pd.Series(dtype=float)

    weather, weather_note = weather_comparison(svc, energy_daily, base, current, energy_base, energy_current)
    out_b, out_c = _output(svc, entity, *base), _output(svc, entity, *current)
    common = sorted(set(out_b) & set(out_c))
    body = {"weather": weather, "weather_note": weather_note}
    if len(common) != 1 or len(out_b) != 1 or len(out_c) != 1:
        reason = ("no production records in both periods" if not common else
                  f"{len(set(out_b) | set(out_c))} products: no single output to normalise to")
        return {"output": None, "output_note": reason, **body}
    (product, unit), = common
    try:
        figures = output_normalised(energy_base, out_b[common[0]], energy_current, out_c[common[0]])
    except ValueError as exc:
        return {"output": None, "output_note": str(exc), **body}
    return {"output": {"product": product, "unit": unit, "base_output": out_b[common[0]],
                       "current_output": out_c[common[0]], **figures}, "output_note": "", **body}


def trend_body(svc, entity: str, end: pd.Timestamp, months: int) -> dict[str, Any]:
    """The monthly energy of the ``months`` months before ``end`` (a month start) and its slope."""
    if not 3 <= months <= 120:
        raise ApiError(400, "bad_months", f"months {months} is not a whole number from 3 to 120", "months")
    end = end.tz_convert(TZ).normalize().replace(day=1)
    start = end - pd.DateOffset(months=months)
    rows = energy(svc, entity, start, end, period="month")
    monthly = rows.groupby("time")["tce"].sum().reindex(pd.date_range(start, end, freq="MS", tz=TZ, inclusive="left"))
    series = [{"month": t.strftime("%Y-%m"), "tce": None if pd.isna(v) else float(v)} for t, v in monthly.items()]
    try:
        fit = trend(monthly)
    except ValueError as exc:
        raise ApiError(422, "too_few_months", str(exc), "months") from None
    return envelope(entity, start, end, months=months, trend=fit, units={"tce": "tce", "slope": "tce/month"},
                     rows=series)


def pareto_body(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, level: str, metric: str) -> dict[str, Any]:
    if level not in PARETO_LEVELS:
        raise ApiError(400, "bad_level", f"level {level!r} is not unit or meter", "level")
    if metric not in METRIC_UNITS:
        raise ApiError(400, "bad_metric", f"metric {metric!r} is not energy, co2 or cost", "metric")
    keys = PARETO_LEVELS[level]
    values = _pareto_values(svc, metric, None if entity == "park" else entity, start, end, keys)
    if values.empty:
        raise no_data(entity, start, end)
    out = pareto(values).rename_axis(keys).reset_index()
    return envelope(entity, start, end, level=level, metric=metric, units={"value": METRIC_UNITS[metric], "share": "1"},
                     key_share=0.8, rows=records(out))


def _pareto_values(svc, metric: str, scope: str | None, start: pd.Timestamp, end: pd.Timestamp,
                   keys: list[str]) -> pd.Series:
    """Per consumer: its energy [tce], production CO₂ [tCO2] or cost [CNY]; the park: every enterprise's own."""
    if metric == "energy":
        rows = energy(svc, scope, start, end)
        return rows.groupby(keys)["tce"].sum() if not rows.empty else pd.Series(dtype=float)
    if metric == "co2":
        rows = emission_rows(svc.client, svc.park.park.id, granularity(start, end), start, end, scope)
        rows = rows[rows["usage"] != "non_production"]
        return rows.groupby(keys)["tco2"].sum() if not rows.empty else pd.Series(dtype=float)
    hourly = bought_hours(svc, scope, start, end, keys)
    if hourly.empty:
        return pd.Series(dtype=float)
    try:
        costs = energy_cost(hourly, svc.tariffs, keys=tuple(keys))
    except NoTariffError as exc:
        raise ApiError(422, "no_tariff", str(exc), "start") from None
    return costs.groupby(keys)["cost"].sum()
