"""Accounting results as JSON-ready dictionaries (CLI, REST API, exports).

Every number comes with its unit (``units`` maps each field to one), every result with the
factors it used, each with its full provenance.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

import pandas as pd

from lingtan_calc.core.accounting.factors import Factor, FactorLibrary
from lingtan_calc.core.accounting.results import Accounts, join_ids

TOTAL_UNITS = {
    "comprehensive_tce": "tce", "feedstock_tce": "tce", "non_production_tce": "tce", "renewable_self_tce": "tce",
    "scope1_tco2": "tCO2", "scope2_tco2": "tCO2", "scope2_market_tco2": "tCO2", "total_tco2": "tCO2",
    "total_market_tco2": "tCO2", "gross_tco2": "tCO2", "exported_tco2": "tCO2", "net_tco2": "tCO2",
    "biomass_tco2": "tCO2", "non_production_tco2": "tCO2", "purchased_kwh": "kWh", "green_kwh": "kWh",
}


def _clean(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def factor_dict(f: Factor) -> dict[str, Any]:
    return f.model_dump(mode="json", exclude_none=True)


def emission_sources(acc: Accounts) -> pd.DataFrame:
    """CO₂ per (period, entity, category, scope, carrier), with the ids of every factor behind it."""
    if acc.emissions.empty:
        return pd.DataFrame(columns=["period", "entity", "category", "scope", "carrier", "tco2", "tco2_market",
                                     "factors"])
    em = acc.emissions.assign(all_factors=acc.emissions["emission_factors"].astype(str) + ","
                              + acc.emissions["market_factors"].astype(str))
    return (em.groupby(["period", "entity", "category", "scope", "carrier"], as_index=False)
            .agg(tco2=("tco2", "sum"), tco2_market=("tco2_market", "sum"), factors=("all_factors", join_ids)))


def accounts_dict(acc: Accounts, lib: FactorLibrary) -> dict[str, Any]:
    """Totals, carriers, emission sources, intensities and the factors used, with units (full precision)."""
    return {
        "units": {**TOTAL_UNITS, "quantity": "canonical unit of the carrier (see 'unit')", "tce": "tce",
                  "tco2": "tCO2", "tco2_market": "tCO2"},
        "totals": _records(acc.totals[["period", "entity", *TOTAL_UNITS]]),
        "by_carrier": _records(acc.by_carrier),
        "emission_sources": _records(emission_sources(acc)),
        "intensities": _records(acc.intensities),
        "factors": [factor_dict(lib[i]) for i in acc.factors_used()],
        "warnings": list(acc.warnings),
    }


# --------------------------------------------------------------------------- the table a person reads

def text_width(text: str) -> int:
    """Columns a string takes in a terminal: CJK (East Asian wide and fullwidth) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - text_width(text))
    return gap + text if right else text + gap


def significant(x: Any, digits: int) -> str:
    """``x`` rounded to ``digits`` significant figures, with thousands separators, never in e-notation."""
    if x is None or isinstance(x, str):
        return "" if x is None else x
    v = float(x)
    if math.isnan(v):
        return ""
    if v == 0:
        return "0"
    v = float(f"{v:.{digits}g}")
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    return f"{v:,.{decimals}f}"


def _table(title: str, headers: list[str], rows: list[list[Any]], numeric: set[int], digits: int) -> list[str]:
    cells = [[significant(v, digits) if i in numeric else ("" if v is None else str(v)) for i, v in enumerate(r)]
             for r in rows]
    widths = [max([text_width(h)] + [text_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(_pad(h, widths[i], i in numeric) for i, h in enumerate(headers)).rstrip()
    out = ["", title, "-" * text_width(title), line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(_pad(c, widths[i], i in numeric) for i, c in enumerate(r)).rstrip() for r in cells]
    return out if rows else out + ["(none)"]


def _day(t: Any) -> str:
    ts = pd.Timestamp(t).tz_convert("Asia/Shanghai")
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M")


def totals_table(acc: Accounts, lib: FactorLibrary, digits: int = 4) -> str:
    """A report a person can read: totals, energy by carrier, intensities, emission sources and every
    factor used, columns aligned for Chinese text, numbers rounded to ``digits`` significant figures."""
    t = acc.totals.sort_values(["period", "entity"])
    out = [f"能碳核算 Energy and carbon accounts — numbers rounded to {digits} significant figures "
           "(--format json keeps full precision); periods start on the date shown (Asia/Shanghai)"]
    out += _table("综合能耗与排放 Totals",
                  ["period", "entity", "综合能耗 tce", "原料用能 tce", "生活用能 tce", "自用可再生 tce", "范围一 tCO2",
                   "范围二 tCO2", "毛排放 gross tCO2", "输出扣减 tCO2", "净排放 net tCO2", "市场法 market tCO2"],
                  [[_day(r.period), r.entity, r.comprehensive_tce, r.feedstock_tce, r.non_production_tce,
                    r.renewable_self_tce, r.scope1_tco2, r.scope2_tco2, r.gross_tco2, r.exported_tco2, r.net_tco2,
                    r.total_market_tco2] for r in t.itertuples()], set(range(2, 12)), digits)
    c = acc.by_carrier.sort_values(["period", "entity", "carrier"])
    out += _table("分品种能源 Energy by carrier", ["period", "entity", "carrier", "quantity", "unit", "tce", "factors"],
                  [[_day(r.period), r.entity, r.carrier, r.quantity, r.quantity_unit, r.tce, r.factors]
                   for r in c.itertuples()], {3, 5}, digits)
    i = acc.intensities.sort_values(["period", "entity", "indicator"]) if not acc.intensities.empty else acc.intensities
    out += _table("强度 Intensities", ["period", "entity", "indicator", "product", "value", "unit", "factors"],
                  [[_day(r.period), r.entity, r.indicator, r.product, r.value, r.unit, r.factors]
                   for r in i.itertuples()], {4}, digits)
    src = emission_sources(acc).sort_values(["period", "entity", "scope", "category"])
    out += _table("排放源 Emission sources", ["period", "entity", "category", "scope", "carrier", "tCO2",
                                          "market tCO2", "factors"],
                  [[_day(r.period), r.entity, r.category, r.scope, r.carrier, r.tco2, r.tco2_market, r.factors]
                   for r in src.itertuples()], {5, 6}, digits)
    out += _table("使用的因子 Factors used", ["id", "value", "unit", "source", "confidence"],
                  [[f.id, f.value, f.unit, f.cite(), f.confidence] for f in (lib[x] for x in acc.factors_used())],
                  set(), digits)
    if acc.warnings:
        out += ["", "注意 Warnings", "-------------", *[f"! {w}" for w in acc.warnings]]
    return "\n".join(out)
