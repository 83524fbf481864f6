"""Totals, process emissions, green electricity and intensities from the accounted rows.

:func:`account` is the one entry point shared by the metered path (ledger from InfluxDB
series) and the offline path (ledger from an inventory file), so both give the same answer
for the same quantities.

Totals per period and entity
----------------------------
``comprehensive_tce``   综合能耗: production plus feedstock energy, non-production excluded
``feedstock_tce``       of which 原料用能
``non_production_tce``  生活用能, reported, not in the total
``scope1_tco2``         fuel combustion + process emissions
``scope2_tco2``         purchased − exported electricity and heat, electricity location-based
``scope2_market_tco2``  the same with electricity market-based: green-power contracts and GECs
                        at zero, the rest at the residual factor (不含市场化交易的非化石能源)
``total_tco2``          scope 1 + scope 2 (location-based); ``total_market_tco2`` likewise
``gross_tco2``          before exported electricity and heat are deducted (scope 1 + purchases)
``exported_tco2``       the deduction for exported electricity and heat [tCO2, ≥ 0 when exporting]
``net_tco2``            after it: gross − exported = ``total_tco2`` (GB/T 32150-2015, 净购入)
``biomass_tco2``        biomass CO₂, reported separately, not in any total
``renewable_self_tce``  self-consumed on-site renewable electricity: renewable generation less
                        what was exported, at most the entity's electricity use [tce]; with
                        ``onsite_renewables: exclude`` it is left out of ``comprehensive_tce``
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lingtan_calc.core.accounting.convert import AccountingOptions, emission_rows, energy_rows, grid_factor
from lingtan_calc.core.accounting.factors import FactorKind, FactorLibrary
from lingtan_calc.core.units import multiplier

KEYS = ["period", "entity"]
PROCESS_COLUMNS = ["period", "entity", "enterprise", "unit", "material", "quantity", "fraction"]
PRODUCTION_COLUMNS = ["period", "entity", "product", "quantity", "product_unit", "output_value", "value_added", "unit"]


@dataclass
class Accounts:
    """Everything one accounting run produces; every total can be traced to ``energy``/``emissions`` rows."""

    energy: pd.DataFrame  # ledger rows with tce and energy_factors
    emissions: pd.DataFrame  # ledger rows (and process rows) with category, scope, tco2, factor ids
    totals: pd.DataFrame  # one row per (period, entity)
    by_carrier: pd.DataFrame  # (period, entity, carrier): physical quantity, unit, tce
    intensities: pd.DataFrame  # (period, entity, kind, product): value and unit
    warnings: list[str] = field(default_factory=list)  # choices between factors the user should know of

    def factors_used(self) -> list[str]:
        ids: set[str] = set()
        for col in ("energy_factors",):
            ids |= {i for v in self.energy[col] for i in str(v).split(",") if i}
        for col in ("emission_factors", "market_factors"):
            ids |= {i for v in self.emissions[col] for i in str(v).split(",") if i}
        return sorted(ids)


def process_rows(activities: pd.DataFrame, lib: FactorLibrary) -> pd.DataFrame:
    """Process emissions (e.g. carbonate decomposition): material [t] × factor × fraction [tCO₂].

    ``activities`` has :data:`PROCESS_COLUMNS`; ``fraction`` is the calcination (or
    conversion) fraction, 1 when complete.
    """
    if activities.empty:
        return pd.DataFrame()
    out = activities.copy()
    dates = pd.DatetimeIndex(out["period"]).tz_convert("Asia/Shanghai").date
    tco2, ids = np.zeros(len(out)), np.empty(len(out), dtype=object)
    for i, (material, day) in enumerate(zip(out["material"], dates, strict=True)):
        f = lib.resolve(FactorKind.process_emission_factor, material, day)
        tco2[i] = multiplier("t", f.unit, "tCO2") * f.value
        ids[i] = f.id
    out["tco2"] = out["quantity"].to_numpy() * out["fraction"].to_numpy() * tco2
    out["tco2_market"] = out["tco2"]
    out["category"], out["scope"], out["carrier"], out["flow"], out["usage"] = "process", 1, "", "input", "production"
    out["meter"], out["point"] = "", ""
    out["emission_factors"], out["market_factors"] = ids, ids
    return out.drop(columns=["material", "fraction"])


def _sum(df: pd.DataFrame, mask: pd.Series, col: str, name: str) -> pd.Series:
    return df[mask].groupby(KEYS)[col].sum().rename(name)


def account(ledger: pd.DataFrame, lib: FactorLibrary, options: AccountingOptions | None = None, *,
            process: pd.DataFrame | None = None, green_kwh: pd.DataFrame | None = None,
            production: pd.DataFrame | None = None) -> Accounts:
    """Energy, carbon and intensities for every (period, entity) of ``ledger``.

    Parameters
    ----------
    ledger : pandas.DataFrame
        Signed quantities (see :mod:`lingtan_calc.core.accounting.boundary`).
    process : pandas.DataFrame, optional
        Process activities, :data:`PROCESS_COLUMNS`.
    green_kwh : pandas.DataFrame, optional
        Columns ``period``, ``entity``, ``kwh``: green-power contracts and GECs (1 GEC =
        1 000 kWh) claimed for the period, counted at zero in the market-based figure.
    production : pandas.DataFrame, optional
        :data:`PRODUCTION_COLUMNS`: output per product [product_unit], output value and
        value added [万元]; ``unit`` optionally ties a product to one production unit.
    """
    options = options or AccountingOptions()
    warnings: list[str] = []
    energy = energy_rows(ledger, lib, options, warnings)
    return summarise(energy, emission_rows(ledger, lib, options), lib, options, process=process,
                     green_kwh=green_kwh, production=production, warnings=warnings)


def summarise(energy: pd.DataFrame, emissions: pd.DataFrame, lib: FactorLibrary, options: AccountingOptions, *,
              process: pd.DataFrame | None = None, green_kwh: pd.DataFrame | None = None,
              production: pd.DataFrame | None = None, renewable_self: pd.Series | None = None,
              warnings: list[str] | None = None) -> Accounts:
    """Totals and intensities from accounted rows (:func:`account`, or sums of them over a period).

    ``renewable_self`` [tce per (period, entity)] is given when the rows are sums of shorter
    periods: the self-consumed renewables are then the sum of those periods' (the balance is
    struck per hour), not recomputed from the sums.
    """
    if process is not None and not process.empty:
        emissions = pd.concat([emissions, process_rows(process, lib)], ignore_index=True)
    if green_kwh is not None and not green_kwh.empty:
        emissions = pd.concat([emissions, _green_rows(emissions, green_kwh, lib, options)], ignore_index=True)

    counted = energy["usage"].isin(["production", "feedstock"])
    self_consumed = _renewable_self(energy[counted]) if renewable_self is None else renewable_self
    totals = pd.concat([
        _sum(energy, counted, "tce", "comprehensive_tce"),
        _sum(energy, energy["usage"] == "feedstock", "tce", "feedstock_tce"),
        _sum(energy, energy["usage"] == "non_production", "tce", "non_production_tce"),
        self_consumed.rename("renewable_self_tce"),
    ], axis=1)
    totals = totals.join(_emission_totals(emissions), how="outer").fillna(0.0)
    if options.onsite_renewables == "exclude":
        totals["comprehensive_tce"] -= totals["renewable_self_tce"]
    totals["total_tco2"] = totals["scope1_tco2"] + totals["scope2_tco2"]
    totals["total_market_tco2"] = totals["scope1_tco2"] + totals["scope2_market_tco2"]
    totals["net_tco2"] = totals["gross_tco2"] - totals["exported_tco2"]
    totals = totals.reset_index()

    by_carrier = (energy[counted].groupby(["period", "entity", "carrier", "quantity_unit"], as_index=False)
                  .agg(quantity=("quantity", "sum"), tce=("tce", "sum"), factors=("energy_factors", join_ids)))
    intensities = _intensities(totals, energy, emissions, production, options)
    return Accounts(energy, emissions, totals, by_carrier, intensities, list(warnings or []))


def join_ids(values) -> str:
    """The distinct factor ids of comma-separated id lists, sorted and comma-separated."""
    return ",".join(sorted({i for v in values for i in str(v).split(",") if i and i != "nan"}))


def _emission_totals(emissions: pd.DataFrame) -> pd.DataFrame:
    """Scope 1 and 2, gross and exported CO2 and the electricity figures per (period, entity)."""
    in_total = emissions["usage"].isin(["production", "feedstock"]) & (emissions["category"] != "biomass")
    exported = emissions["category"].isin(["exported_electricity", "exported_heat"])
    totals = pd.concat([
        _sum(emissions, in_total & (emissions["scope"] == 1), "tco2", "scope1_tco2"),
        _sum(emissions, in_total & (emissions["scope"] == 2), "tco2", "scope2_tco2"),
        _sum(emissions, in_total & (emissions["scope"] == 2), "tco2_market", "scope2_market_tco2"),
        _sum(emissions, in_total & ~exported, "tco2", "gross_tco2"),
        -_sum(emissions, in_total & exported, "tco2", "exported_tco2"),
        _sum(emissions, emissions["category"] == "biomass", "tco2", "biomass_tco2"),
        _sum(emissions, emissions["usage"] == "non_production", "tco2", "non_production_tco2"),
        _sum(emissions, in_total & (emissions["category"] == "purchased_electricity"), "quantity", "purchased_kwh"),
        _sum(emissions, emissions["category"] == "green_electricity", "quantity", "green_kwh"),
    ], axis=1)
    return totals


def _renewable_self(counted: pd.DataFrame) -> pd.Series:
    """Self-consumed on-site renewables [tce] per (period, entity): renewable generation less the
    electricity exported (export is taken from the renewable surplus first), at least 0 and at
    most the entity's counted electricity."""
    el = counted[counted["carrier"] == "electricity"]
    if el.empty:
        return pd.Series(dtype=float, index=pd.MultiIndex.from_arrays([[], []], names=KEYS))
    renewable = el[el["flow"] == "renewable"].groupby(KEYS)["tce"].sum()
    exported = -el[el["flow"] == "export"].groupby(KEYS)["tce"].sum()
    used = el.groupby(KEYS)["tce"].sum()
    surplus = renewable.sub(exported, fill_value=0.0).reindex(used.index, fill_value=0.0)
    return surplus.clip(lower=0.0).combine(used.clip(lower=0.0), min)


def _green_rows(emissions: pd.DataFrame, green: pd.DataFrame, lib: FactorLibrary,
                options: AccountingOptions) -> pd.DataFrame:
    """Market-based: claimed green kWh leave the purchased electricity at the residual factor.

    One ``green_electricity`` row per claim (scope 2, ``tco2`` 0, ``tco2_market`` negative,
    ``quantity`` the kWh claimed, at most the kWh purchased): a row, not an adjustment of a
    total, so that months and years, which are sums of rows, keep the claims.
    """
    bought = emissions[(emissions["category"] == "purchased_electricity")
                       & emissions["usage"].isin(["production", "feedstock"])].groupby(KEYS)["quantity"].sum()
    rows = []
    for key, kwh in green.groupby(KEYS)["kwh"].sum().items():
        claimable = min(float(kwh), max(0.0, float(bought.get(key, 0.0))))
        if claimable <= 0:
            continue
        day = pd.Timestamp(key[0]).tz_convert("Asia/Shanghai").date()
        residual = grid_factor(day, lib, "CN", options.residual_basis)
        rows.append({"period": key[0], "entity": key[1], "enterprise": key[1] if key[1] != "park" else "",
                     "unit": "", "meter": "", "point": "", "carrier": "electricity", "flow": "input",
                     "usage": "production", "quantity": claimable, "category": "green_electricity", "scope": 2,
                     "tco2": 0.0, "tco2_market": -claimable * residual.value,
                     "emission_factors": residual.factor_ids, "market_factors": residual.factor_ids})
    return pd.DataFrame(rows)


def _intensities(totals: pd.DataFrame, energy: pd.DataFrame, emissions: pd.DataFrame,
                 production: pd.DataFrame | None, options: AccountingOptions) -> pd.DataFrame:
    """单位产品/产值/增加值综合能耗 and the carbon intensities, per (period, entity), each with the
    ids of the factors behind its numerator."""
    cols = ["period", "entity", "indicator", "product", "value", "unit", "numerator", "denominator", "factors"]
    if production is None or production.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    t = totals.set_index(KEYS)
    counted = energy[energy["usage"].isin(["production", "feedstock"])]
    in_total = emissions[emissions["usage"].isin(["production", "feedstock"]) & (emissions["category"] != "biomass")]
    energy_ids = counted.groupby(KEYS)["energy_factors"].agg(join_ids)
    carbon_ids = in_total.groupby(KEYS)["emission_factors"].agg(join_ids)
    values = production.groupby(KEYS)[["output_value", "value_added"]].sum(min_count=1)
    for key, v in values.iterrows():
        if key not in t.index:
            continue
        e, c = t.at[key, "comprehensive_tce"], t.at[key, "total_tco2"]
        for col in ("output_value", "value_added"):
            if pd.notna(v[col]) and v[col] > 0:
                rows.append((*key, f"energy_per_{col}", "", e / v[col], "tce/万元", e, v[col], energy_ids.get(key, "")))
                rows.append((*key, f"carbon_per_{col}", "", c / v[col], "tCO2/万元", c, v[col], carbon_ids.get(key, "")))
    # per product: energy of the product's production unit, or of the enterprise when it makes one product
    unit_tce = _unit_tce(counted, t, options)
    unit_tco2 = in_total.groupby(["period", "entity", "unit"])["tco2"].sum()
    unit_ids = counted.groupby(["period", "entity", "unit"])["energy_factors"].agg(join_ids)
    unit_cids = in_total.groupby(["period", "entity", "unit"])["emission_factors"].agg(join_ids)
    for key, grp in production[production["quantity"].notna()].groupby(KEYS):
        if key not in t.index:
            continue
        for _, p in grp.iterrows():
            if p["quantity"] <= 0:
                continue
            if isinstance(p.get("unit"), str) and p["unit"]:
                ukey = (*key, p["unit"])
                e, c = float(unit_tce.get(ukey, 0.0)), float(unit_tco2.get(ukey, 0.0))
                eids, cids = unit_ids.get(ukey, ""), unit_cids.get(ukey, "")
            elif len(grp) == 1:
                e, c = float(t.at[key, "comprehensive_tce"]), float(t.at[key, "total_tco2"])
                eids, cids = energy_ids.get(key, ""), carbon_ids.get(key, "")
            else:
                continue  # several products without units: not allocated (GB/T 2589-2020 3.8 needs a split)
            rows.append((*key, "energy_per_product", p["product"], e / p["quantity"], f"tce/{p['product_unit']}",
                         e, p["quantity"], eids))
            rows.append((*key, "carbon_per_product", p["product"], c / p["quantity"], f"tCO2/{p['product_unit']}",
                         c, p["quantity"], cids))
    return pd.DataFrame(rows, columns=cols)


def _unit_tce(counted: pd.DataFrame, totals: pd.DataFrame, options: AccountingOptions) -> pd.Series:
    """Energy per (period, entity, unit) [tce]; without on-site renewables, each unit's share of the
    entity's self-consumed renewables is left out in proportion to its electricity."""
    unit_tce = counted.groupby(["period", "entity", "unit"])["tce"].sum()
    if options.onsite_renewables != "exclude" or unit_tce.empty:
        return unit_tce
    el = counted[counted["carrier"] == "electricity"].groupby(["period", "entity", "unit"])["tce"].sum().clip(lower=0)
    share = (el / el.groupby(level=[0, 1]).transform("sum")).reindex(unit_tce.index).fillna(0.0)
    excluded = totals["renewable_self_tce"].reindex(unit_tce.index.droplevel(2)).to_numpy()
    return unit_tce - share * excluded


def period_date(period: pd.Timestamp) -> dt.date:
    return pd.Timestamp(period).tz_convert("Asia/Shanghai").date()
