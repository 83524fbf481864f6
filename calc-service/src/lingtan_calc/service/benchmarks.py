"""Per-product consumption against the 单位产品能源消耗限额 limits, for the API and the recommendations
(docs/analysis.md §7). Flask-free: the views in :mod:`lingtan_calc.service.api_analysis` call these.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lingtan.errors import ApiError
from lingtan_calc.adapters.energy_reads import product_energy_rows
from lingtan_calc.core.analysis.limits import ProductLimit, compare_with_limits, limit_for
from lingtan_calc.service.analysis import envelope, granularity, records

#: the standards count electricity at its calorific equivalent (data/limits/national.yaml)
LIMIT_BASIS = "dangliang"


def limit_record(lim: ProductLimit) -> dict[str, Any]:
    return {"id": lim.id, "product": lim.product, "names": list(lim.names), "indicator": lim.indicator,
            "unit": lim.unit, **lim.grades.model_dump(), "conditions": lim.conditions, **lim.source.model_dump()}


def limits_body(svc) -> dict[str, Any]:
    """The limit library: the shipped limits and the park's own."""
    return {"limits": [limit_record(lim) for lim in svc.limits],
            "park_file": str(svc.settings.limits_file) if svc.settings.limits_file else None}


def check_product(svc, product: str | None) -> ProductLimit | None:
    """The limit of ``product``; a product no limit names is a 400 naming the field and the value."""
    if product is None:
        return None
    lim = limit_for(svc.limits, product)
    if lim is None:
        files = "the shipped limits" + (f" and {svc.settings.limits_file}" if svc.settings.limits_file else "")
        known = sorted({n for lim in svc.limits for n in lim.names[:1]})
        raise ApiError(400, "unknown_product", f"product {product!r} has no limit in {files}; products with a "
                       f"limit: {', '.join(known)}", "product")
    return lim


def per_product(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Energy [tce] and output per enterprise and product over the range, from the accounted intensities."""
    period = granularity(start, end)
    scope = None if entity == "park" else entity
    rows = product_energy_rows(svc.client, svc.park.park.id, "day" if period == "hour" else period, start, end, scope)
    if rows.empty:
        return pd.DataFrame(columns=["entity", "product", "output_unit", "tce", "output"])
    out = rows.groupby(["entity", "product", "output_unit"], as_index=False)[["numerator", "denominator"]].sum()
    return out.rename(columns={"numerator": "tce", "denominator": "output"})


def benchmarks_body(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, product: str | None) -> dict[str, Any]:
    """Each product of ``entity`` (the park: of every enterprise) against its limit over ``[start, end)``."""
    wanted = check_product(svc, product)
    found = per_product(svc, entity, start, end)
    if found.empty:
        raise ApiError(404, "no_data", f"no production records with accounted energy for entity {entity!r} from "
                       f"{start.isoformat()} to {end.isoformat()}: import the production data of the period "
                       "(POST /api/v1/production) and recalculate it", "start")
    compared, unmatched = compare_with_limits(found, svc.limits)
    if wanted is not None:
        compared = compared[compared["limit_id"] == wanted.id]
        unmatched = unmatched.iloc[0:0]
    basis = svc.calculator.options.electricity_basis
    warning = None if basis == LIMIT_BASIS else (
        f"the park accounts electricity at {basis}; the limits count it at the calorific equivalent (当量值), "
        "so the specific consumption is not comparable with them")
    return envelope(entity, start, end, product=product, basis=basis, warning=warning,
                     units={"specific": "kgce per limit unit", "tce": "tce", "excess_tce": "tce"},
                     rows=records(compared), unmatched=records(unmatched))
