"""Energy analysis on the calc API, ``/api/v1/analysis/...`` (docs/analysis.md).

Each endpoint reads the accounted rows (``acc_energy``, ``acc_emission``) of a range, at the
coarsest period the range is aligned to (month, day or hour), and answers with the pure
functions of :mod:`lingtan_calc.core.analysis`:

``structure``  the share by carrier, enterprise, unit, usage, flow or meter [tce, physical units]
``cost``       cost per carrier and time-of-use band, the demand charge, the average price [CNY]
``compare``    two periods side by side (环比: the previous period of the same length; 同比: a year before)
``trend``      the monthly series over 12 months and its least-squares slope
``pareto``     the units or meters ranked by energy, CO₂ or cost, the top 80 % flagged
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from flask import Blueprint, current_app, jsonify, request

from lingtan.errors import ApiError
from lingtan_calc.adapters.energy_reads import emission_rows, energy_rows
from lingtan_calc.core.analysis.cost import NoTariffError, cost_summary, demand_charge, energy_cost, unpriced
from lingtan_calc.core.analysis.structure import (
    BREAKDOWNS,
    attribute_deliveries,
    compare,
    pareto,
    structure,
    trend,
)
from lingtan_calc.core.analysis.tariffs import Tariff, peak_valley_ratio
from lingtan_calc.service.api import TZ, _entity, _range, _svc, parse_time

bp = Blueprint("analysis", __name__, url_prefix="/api/v1/analysis")
TARIFFS_KEY = "lingtan_calc.tariffs"
#: the peak:valley ratio below which a tariff is reported (发改价格〔2021〕1093号: ≥ 3, or ≥ 4 where the
#: system's peak-valley gap exceeds 40 %)
MIN_PEAK_VALLEY = 3.0
PARETO_LEVELS = {"unit": ["enterprise", "unit_id"], "meter": ["enterprise", "unit_id", "meter"]}


def tariffs() -> list[Tariff]:
    return current_app.extensions[TARIFFS_KEY]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
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


def _energy(entity: str | None, start: pd.Timestamp, end: pd.Timestamp, period: str | None = None) -> pd.DataFrame:
    """Energy rows, deliveries moved to the supplier's meter upstream (:func:`attribute_deliveries`)."""
    svc = _svc()
    rows = energy_rows(svc.client, svc.park.park.id, period or granularity(start, end), start, end, entity)
    return attribute_deliveries(rows, _parents(svc.park))


def _parents(park) -> dict[str, tuple[str, str, str]]:
    """Sub-meter id -> (enterprise, unit, meter) of its parent meter."""
    where = {m.id: (e.id, u.id) for e in park.enterprises for u in e.units for m in u.meters}
    return {m.id: (*where[m.parent], m.parent) for e in park.enterprises for u in e.units for m in u.meters
            if m.parent is not None and m.parent in where}


def _scope(entity: str, by: str) -> str | None:
    """The park broken down by enterprise, unit or meter is the sum of its enterprises' own rows (None):
    its own rows are only the meters on the park boundary. The enterprises add up to the park exactly
    (docs/accounting.md, boundary)."""
    return None if entity == "park" and by in ("enterprise", "unit", "meter") else entity


def _by() -> str:
    by = request.args.get("by", "carrier")
    if by not in BREAKDOWNS:
        raise ApiError(400, "bad_by", f"by {by!r} is not one of {', '.join(BREAKDOWNS)}", "by")
    return by


def _no_data(entity: str, start: pd.Timestamp, end: pd.Timestamp) -> ApiError:
    return ApiError(404, "no_data", f"no accounted energy for entity {entity!r} from {start.isoformat()} to "
                    f"{end.isoformat()}: the period is before the first calculation or the meters sent nothing", "start")


def _envelope(entity: str, start: pd.Timestamp, end: pd.Timestamp, **body: Any):
    return jsonify({"entity": entity, "start": start.isoformat(), "end": end.isoformat(), **body})


@bp.get("/structure")
def structure_view():
    entity, by = _entity(), _by()
    start, end = _range()
    rows = _energy(_scope(entity, by), start, end)
    if rows.empty:
        raise _no_data(entity, start, end)
    out = structure(rows, by)
    return _envelope(entity, start, end, by=by, total_tce=float(out["tce"].sum()),
                     units={"tce": "tce", "quantity": "canonical unit of the carrier", "share": "1"}, rows=_records(out))


def _bought_hours(entity: str | None, start: pd.Timestamp, end: pd.Timestamp, keys: list[str]) -> pd.DataFrame:
    """Hourly energy an entity (None: each enterprise) bought or received (``flow`` input), with ``keys`` kept."""
    rows = _energy(entity, start, end, period="hour")
    rows = rows[rows["flow"] == "input"]
    return rows.groupby(["time", "entity", *keys, "carrier"], as_index=False)["quantity"].sum()


def _tariff_notes(used: set[str]) -> list[dict[str, Any]]:
    notes = []
    for t in tariffs():
        if t.id in used:
            ratio = peak_valley_ratio(t)
            notes.append({"id": t.id, "name": t.name, "source": t.source.model_dump(), "valid_from": str(t.valid_from),
                          "valid_to": str(t.valid_to) if t.valid_to else None, "peak_valley_ratio": ratio})
    return notes


@bp.get("/cost")
def cost_view():
    entity = _entity()
    start, end = _range()
    hourly = _bought_hours(entity, start, end, [])
    if hourly.empty:
        raise _no_data(entity, start, end)
    try:
        costs = energy_cost(hourly, tariffs())
        elec = hourly[hourly["carrier"] == "electricity"].groupby("time")["quantity"].sum()
        demand = demand_charge(elec, entity, tariffs(), start, end)
    except NoTariffError as exc:
        raise ApiError(422, "no_tariff", str(exc), "start") from None
    summary = cost_summary(costs, demand)
    notes = _tariff_notes(set(costs["tariff"]) | set(demand["tariff"]))
    warnings = [f"carrier {c} has no price and is not costed" for c in unpriced(hourly, tariffs())]
    warnings += [f"tariff {n['id']}: peak:valley ratio {n['peak_valley_ratio']:.2f} is below {MIN_PEAK_VALLEY:g} "
                 "(发改价格〔2021〕1093号)" for n in notes
                 if n["peak_valley_ratio"] is not None and n["peak_valley_ratio"] < MIN_PEAK_VALLEY]
    return _envelope(entity, start, end, total_cost=float(summary["cost"].sum()), currency="CNY",
                     units={"cost": "CNY", "price": "CNY per unit", "quantity": "canonical unit of the carrier",
                            "demand_kw": "kW", "charged": "kW or kVA"},
                     summary=_records(summary), bands=_records(costs), demand=_records(demand), tariffs=notes,
                     warnings=warnings)


def _base_range(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    base = request.args.get("base", "previous")
    if "base_start" in request.args or "base_end" in request.args:
        b0, b1 = parse_time(request.args.get("base_start"), "base_start"), parse_time(request.args.get("base_end"), "base_end")
        if not b0 < b1:
            raise ApiError(400, "bad_range", f"base_start {b0.isoformat()} is not before base_end {b1.isoformat()}", "base_start")
        return b0, b1, "custom"
    if base == "last_year":  # 同比
        return start - pd.DateOffset(years=1), end - pd.DateOffset(years=1), base
    if base == "previous":  # 环比: the period of the same calendar length just before
        local0, local1 = start.tz_convert(TZ), end.tz_convert(TZ)
        if granularity(start, end) == "month":
            months = (local1.year - local0.year) * 12 + local1.month - local0.month
            return local0 - pd.DateOffset(months=months), local0, base
        return start - (end - start), start, base
    raise ApiError(400, "bad_base", f"base {base!r} is not previous or last_year (or give base_start and base_end)", "base")


@bp.get("/compare")
def compare_view():
    entity, by = _entity(), _by()
    start, end = _range()
    b0, b1, base = _base_range(start, end)
    scope = _scope(entity, by)
    current, previous = _energy(scope, start, end), _energy(scope, b0, b1)
    if current.empty and previous.empty:
        raise _no_data(entity, start, end)
    keys = BREAKDOWNS[by]
    tce = compare(_indexed(previous, keys, "tce"), _indexed(current, keys, "tce"))
    out = tce.reset_index()
    if "carrier" in keys:
        qty = compare(_indexed(previous, keys, "quantity"), _indexed(current, keys, "quantity"))
        out = out.merge(qty.add_prefix("quantity_").reset_index(), on=keys, how="left")
    totals = compare(pd.Series({"total": previous["tce"].sum()}), pd.Series({"total": current["tce"].sum()}))
    return _envelope(entity, start, end, by=by, base=base, base_start=b0.isoformat(), base_end=b1.isoformat(),
                     total=_records(totals)[0], units={"base": "tce", "current": "tce", "change": "tce",
                                                       "change_ratio": "1", "quantity_*": "canonical unit"},
                     rows=_records(out))


def _indexed(rows: pd.DataFrame, keys: list[str], field: str) -> pd.Series:
    if rows.empty:
        return pd.Series(dtype=float)
    series = rows.groupby(keys)[field].sum()
    series.index = series.index.set_names(keys)
    return series


@bp.get("/trend")
def trend_view():
    entity = _entity()
    end = parse_time(request.args.get("end"), "end") if "end" in request.args else \
        pd.Timestamp.now(tz=TZ).normalize().replace(day=1)
    end = end.normalize().replace(day=1) if end != end.normalize().replace(day=1) else end
    raw_months = request.args.get("months", "12")
    months = int(raw_months) if raw_months.isascii() and raw_months.isdigit() and len(raw_months) <= 3 else -1
    if not 3 <= months <= 120:
        raise ApiError(400, "bad_months", f"months {request.args.get('months')!r} is not a whole number from 3 to 120", "months")
    start = end - pd.DateOffset(months=months)
    rows = _energy(entity, start, end, period="month")
    monthly = rows.groupby("time")["tce"].sum().reindex(pd.date_range(start, end, freq="MS", tz=TZ, inclusive="left"))
    series = [{"month": t.strftime("%Y-%m"), "tce": None if pd.isna(v) else float(v)} for t, v in monthly.items()]
    try:
        fit = trend(monthly)
    except ValueError as exc:
        raise ApiError(422, "too_few_months", str(exc), "months") from None
    return _envelope(entity, start, end, months=months, trend=fit, units={"tce": "tce", "slope": "tce/month"},
                     rows=series)


@bp.get("/pareto")
def pareto_view():
    entity = _entity()
    start, end = _range()
    level, metric = request.args.get("level", "unit"), request.args.get("metric", "energy")
    if level not in PARETO_LEVELS:
        raise ApiError(400, "bad_level", f"level {level!r} is not unit or meter", "level")
    keys = PARETO_LEVELS[level]
    scope = None if entity == "park" else entity  # the park: every enterprise's own consumption
    values = _pareto_values(metric, scope, start, end, keys)
    if values.empty:
        raise _no_data(entity, start, end)
    out = pareto(values).rename_axis(keys).reset_index()
    units = {"energy": "tce", "co2": "tCO2", "cost": "CNY"}[metric]
    return _envelope(entity, start, end, level=level, metric=metric, units={"value": units, "share": "1"},
                     key_share=0.8, rows=_records(out))


def _pareto_values(metric: str, scope: str | None, start: pd.Timestamp, end: pd.Timestamp, keys: list[str]) -> pd.Series:
    if metric == "energy":
        rows = _energy(scope, start, end)
        return rows.groupby(keys)["tce"].sum() if not rows.empty else pd.Series(dtype=float)
    if metric == "co2":
        svc = _svc()
        rows = emission_rows(svc.client, svc.park.park.id, granularity(start, end), start, end, scope)
        rows = rows[rows["usage"] != "non_production"]
        return rows.groupby(keys)["tco2"].sum() if not rows.empty else pd.Series(dtype=float)
    if metric != "cost":
        raise ApiError(400, "bad_metric", f"metric {metric!r} is not energy, co2 or cost", "metric")
    hourly = _bought_hours(scope, start, end, keys)
    if hourly.empty:
        return pd.Series(dtype=float)
    try:
        costs = energy_cost(hourly, tariffs(), keys=tuple(keys))
    except NoTariffError as exc:
        raise ApiError(422, "no_tariff", str(exc), "start") from None
    return costs.groupby(keys)["cost"].sum()

