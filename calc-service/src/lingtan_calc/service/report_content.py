"""What a daily, monthly or annual report (日报/月报/年报) holds, gathered from the accounted series.

:func:`report_content` returns one plain dict per report (docs/analysis.md §8): the totals,
energy by carrier, intensities, CO₂ by source and scope (location- and market-based), cost,
the comparison with the previous period and the same period a year before, the key consumers,
the energy balance table, the open recommendations, the data quality of the period and the
factors used with their sources. The renderers (:mod:`lingtan_calc.adapters.report_xlsx`,
:mod:`lingtan_calc.adapters.report_pdf`) only lay it out, so the numbers in a file are the
numbers of the API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import select

from lingtan.errors import ApiError
from lingtan_calc.adapters.derived import TOTAL_FIELDS
from lingtan_calc.adapters.energy_reads import emission_rows, factor_ids, intensity_rows, totals_rows
from lingtan_calc.adapters.meter_events import QuarantineRow, local, utc
from lingtan_calc.adapters.recommendation_store import as_dict, listed
from lingtan_calc.service.analysis import (
    base_range,
    compare_body,
    cost_body,
    pareto_body,
    records,
    structure_body,
)
from lingtan_calc.service.balance import balance_body

TZ = "Asia/Shanghai"
KINDS = {"day": "D", "month": "MS", "year": "YS"}
TOP_CONSUMERS = 10


def period_of(kind: str, start: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of the report period; ``start`` must be the period's first instant."""
    if kind not in KINDS:
        raise ApiError(400, "bad_kind", f"kind {kind!r} is not day, month or year", "kind")
    local = start.tz_convert(TZ)
    aligned = {"day": local.normalize(), "month": local.normalize().replace(day=1),
               "year": local.normalize().replace(month=1, day=1)}[kind]
    if local != aligned:
        raise ApiError(400, "bad_start", f"start {local.isoformat()} is not the start of a {kind} "
                       f"(e.g. {aligned.date().isoformat()})", "start")
    end = aligned + (pd.Timedelta(days=1) if kind == "day" else pd.DateOffset(months=1 if kind == "month" else 12))
    return aligned, end


def label_of(kind: str, start: pd.Timestamp) -> str:
    return start.strftime({"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[kind])


def _totals(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp) -> tuple[dict[str, float], int]:
    """The entity's totals summed over the period's hours, and how many hours were accounted."""
    basis = svc.calculator.options.electricity_basis
    hours = totals_rows(svc.client, svc.park.park.id, "hour", start, end, entity, TOTAL_FIELDS, basis)
    return {f: float(hours[f].sum()) for f in TOTAL_FIELDS}, int(hours["time"].nunique())


def _carbon(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, period: str) -> list[dict[str, Any]]:
    rows = emission_rows(svc.client, svc.park.park.id, period, start, end, entity)
    rows = rows[rows["usage"] != "non_production"]
    if rows.empty:
        return []
    by = rows.groupby(["category", "scope", "carrier"], as_index=False)[["tco2", "tco2_market"]].sum()
    return records(by.sort_values(["scope", "category", "carrier"]))


def _optional(fn, *args) -> tuple[dict[str, Any] | None, str | None]:
    """A section that may be missing (no tariff, no topology): its body, or the reason it is missing."""
    try:
        return fn(*args), None
    except ApiError as exc:
        return None, exc.message


def _quality(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, hours: int) -> dict[str, Any]:
    expected = int((end - start) / pd.Timedelta(hours=1))
    with svc.sessions() as s:
        q = select(QuarantineRow).where(QuarantineRow.start < utc(end), QuarantineRow.end > utc(start))
        if entity != "park":
            q = q.where(QuarantineRow.enterprise == entity)
        quarantined = [{"point": r.point, "meter": r.meter, "start": local(r.start).isoformat(),
                        "end": local(r.end).isoformat(),
                        "measured": r.measured, "limit": r.limit, "unit": r.unit, "status": r.status}
                       for r in s.scalars(q)]
    return {"hours_expected": expected, "hours_accounted": hours, "coverage": hours / expected if expected else None,
            "quarantined": quarantined}


def _factors(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, period: str) -> list[dict[str, Any]]:
    lib = svc.calculator.lib
    out = []
    for fid in sorted(factor_ids(svc.client, svc.park.park.id, period, start, end, entity)):
        try:
            f = lib[fid]
        except KeyError:
            out.append({"id": fid, "kind": "", "value": None, "unit": "", "source": "(no longer in the library)"})
            continue
        src = f.source
        out.append({"id": f.id, "kind": f.kind.value, "subject": f.subject, "value": f.value, "unit": f.unit,
                    "source": " ".join(x for x in (src.document, getattr(src, "edition", ""), getattr(src, "clause", "")) if x),
                    "confidence": f.confidence})
    return out


def report_content(svc, entity: str, kind: str, start: pd.Timestamp, lang: str = "zh") -> dict[str, Any]:
    """Everything one report shows (see the module doc); 404 ``no_data`` for a period without accounted energy."""
    start, end = period_of(kind, start)
    period = {"day": "day", "month": "day", "year": "month"}[kind]  # the rows each section sums
    totals, hours = _totals(svc, entity, start, end)
    if hours == 0:
        raise ApiError(404, "no_data", f"no accounted energy for entity {entity!r} in the {kind} {label_of(kind, start)}: "
                       "the period is before the first calculation or the meters sent nothing", "start")
    names = {"park": svc.park.park.name, **{e.id: e.name for e in svc.park.enterprises}}
    cost, cost_missing = _optional(cost_body, svc, entity, start, end)
    balance, balance_missing = _optional(balance_body, svc, entity, start, end)
    pareto, _ = _optional(pareto_body, svc, entity, start, end, "unit", "energy")
    comparisons = {}
    for base in ("previous", "last_year"):
        b0, b1 = base_range(start, end, base)
        comparisons[base], _ = _optional(compare_body, svc, entity, start, end, "carrier", (b0, b1, base))
    with svc.sessions() as s:
        recommendations = [as_dict(r) for r in listed(s, entity, ("open", "acknowledged"))]
    return {
        "meta": {"park": svc.park.park.name, "entity": entity, "entity_name": names.get(entity, entity), "kind": kind,
                 "period": label_of(kind, start), "start": start.isoformat(), "end": end.isoformat(), "lang": lang,
                 "generated_at": dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(
                     timespec="seconds"),
                 "basis": svc.calculator.options.electricity_basis},
        "totals": totals,
        "energy": structure_body(svc, entity, start, end, "carrier")["rows"],
        "intensities": records(intensity_rows(svc.client, svc.park.park.id, period, start, end, entity)
                               .groupby(["indicator", "product", "unit"], as_index=False)[["numerator", "denominator"]]
                               .sum().assign(value=lambda f: f["numerator"] / f["denominator"].where(f["denominator"] != 0))),
        "carbon": _carbon(svc, entity, start, end, period),
        "cost": cost, "cost_missing": cost_missing,
        "comparison": comparisons,
        "top_consumers": (pareto or {}).get("rows", [])[:TOP_CONSUMERS],
        "balance": balance, "balance_missing": balance_missing,
        "recommendations": recommendations,
        "quality": _quality(svc, entity, start, end, hours),
        "factors": _factors(svc, entity, start, end, period),
    }
