"""Accounting results as JSON-ready dictionaries (CLI, REST API, exports).

Every number comes with its unit (``units`` maps each field to one), every result with the
factors it used, each with its full provenance.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lingtan.calc.factors import Factor, FactorLibrary
from lingtan.calc.results import Accounts

TOTAL_UNITS = {
    "comprehensive_tce": "tce", "feedstock_tce": "tce", "non_production_tce": "tce",
    "scope1_tco2": "tCO2", "scope2_tco2": "tCO2", "scope2_market_tco2": "tCO2", "total_tco2": "tCO2",
    "total_market_tco2": "tCO2", "biomass_tco2": "tCO2", "non_production_tco2": "tCO2",
    "purchased_kwh": "kWh", "green_kwh": "kWh",
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


def accounts_dict(acc: Accounts, lib: FactorLibrary) -> dict[str, Any]:
    """Totals, carriers, emission sources, intensities and the factors used, with units."""
    sources = (acc.emissions.groupby(["period", "entity", "category", "scope", "carrier"], as_index=False)
               [["tco2", "tco2_market"]].sum()) if not acc.emissions.empty else acc.emissions
    return {
        "units": {**TOTAL_UNITS, "quantity": "canonical unit of the carrier (see 'unit')", "tce": "tce",
                  "tco2": "tCO2", "tco2_market": "tCO2"},
        "totals": _records(acc.totals[["period", "entity", *TOTAL_UNITS]]),
        "by_carrier": _records(acc.by_carrier),
        "emission_sources": _records(sources),
        "intensities": _records(acc.intensities),
        "factors": [factor_dict(lib[i]) for i in acc.factors_used()],
    }


def totals_table(acc: Accounts) -> str:
    """A plain-text summary for the terminal (one line per period and entity)."""
    lines = [f"{'period':<26} {'entity':<14} {'综合能耗 tce':>14} {'scope 1 tCO2':>14} {'scope 2 tCO2':>14} "
             f"{'total tCO2':>14} {'market tCO2':>14}"]
    for _, r in acc.totals.sort_values(["period", "entity"]).iterrows():
        lines.append(f"{pd.Timestamp(r['period']).isoformat():<26} {r['entity']:<14} {r['comprehensive_tce']:>14.4f} "
                     f"{r['scope1_tco2']:>14.4f} {r['scope2_tco2']:>14.4f} {r['total_tco2']:>14.4f} "
                     f"{r['total_market_tco2']:>14.4f}")
    return "\n".join(lines)
