"""Energy (GB/T 2589-2020) and carbon (GB/T 32150/32151, NDRC/MEE guidelines) from a ledger.

A *ledger* (:func:`lingtan_calc.core.accounting.boundary.ledger`, or an offline inventory) holds signed
quantities per period, entity, enterprise, unit, meter, carrier, flow and usage, in the
canonical unit of each carrier (kWh, m3, t, GJ, L). This module turns each row into

* standard coal equivalent (:func:`energy_rows`) — ``tce = quantity × coefficient``, the
  coefficient resolved from the factor library for the carrier and the period's date; and
* CO₂ (:func:`emission_rows`) — per source category and scope, with the ids of every factor
  used, so that any total can be traced down to its meters and factors.

Factor resolution happens once per (carrier, date) group, so the work per row is a vector
multiplication.

References
----------
GB/T 2589-2020 综合能耗计算通则, ch. 4–8 and Annex A/B.
GB/T 32150-2015 工业企业温室气体排放核算和报告通则; NDRC 办气候〔2015〕1722号 (工业其他行业):
  E_燃烧 = Σ NCV × FC × CC × OF × 44/12; E_购入电 = AD × EF_grid; E_购入热 = AD × EF_heat;
  exported electricity and heat deducted; biomass CO₂ reported separately.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from lingtan.park.carriers import CARRIER_UNITS, Carrier
from lingtan_calc.core.accounting.factors import Factor, FactorKind, FactorLibrary, FactorNotFound
from lingtan_calc.core.units import convert, multiplier

CO2_PER_C = 44.0 / 12.0  # molar mass ratio CO₂/C (GB/T 32150-2015, EF = CC × OF × 44/12)
#: carriers burnt as fuel (combustion emissions, Scope 1)
FUELS = {Carrier.natural_gas, Carrier.diesel, Carrier.gasoline, Carrier.coal, Carrier.lpg}
#: liquid fuels metered by volume (need a density to reach the per-mass coefficients)
LIQUID_FUELS = {Carrier.diesel, Carrier.gasoline}
#: metered, reported in physical units, not converted to tce (耗能工质 bought in, cooling)
NOT_ENERGY = {Carrier.water, Carrier.cooling}


class AccountingOptions(BaseModel):
    """Choices a report makes; the defaults are those of a park's routine energy-carbon report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    electricity_basis: Literal["dangliang", "dengjia"] = "dangliang"  # 当量值 (default) or 等价值
    grid_region: str = "CN"  # region of the location-based grid factor, e.g. east_china
    grid_basis: Literal["average", "ets"] = "average"
    residual_basis: str = "excluding_market_non_fossil"  # market-based remainder factor
    gwp_set: Literal["AR4", "AR5", "AR6"] = "AR5"
    # comprehensive energy with the self-consumed on-site renewable electricity (include, GB/T 2589
    # counts all energy consumed) or without it (exclude: the 能耗双控 view, in which new renewables
    # are not counted); CO2 is the same either way (renewable electricity emits nothing)
    onsite_renewables: Literal["include", "exclude"] = "include"


@dataclass
class Coefficient:
    """A per-canonical-unit multiplier and the factors it was built from."""

    value: float  # result unit per canonical unit of the carrier
    factors: list[Factor] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def factor_ids(self) -> str:
        return ",".join(f.id for f in self.factors)


def _unit(carrier: Carrier) -> str:
    return CARRIER_UNITS[carrier].counter


def mass_per_unit(carrier: Carrier, on: dt.date, lib: FactorLibrary, region: str) -> Coefficient:
    """kg per canonical unit: 1000 for t, the density for liquid fuels metered in L."""
    if carrier in LIQUID_FUELS:
        f = lib.resolve(FactorKind.density, carrier.value, on, region=region)
        return Coefficient(multiplier("L", f.unit, "kg") * f.value, [f])
    return Coefficient(convert(1.0, _unit(carrier), "kg"), [])


def steam_heat(on: dt.date, lib: FactorLibrary, region: str = "CN") -> Coefficient:
    """Heat per tonne of steam [GJ/t] = (h − h_feedwater) (NDRC guidelines, 蒸汽热量)."""
    h = lib.resolve(FactorKind.steam_enthalpy, "steam", on, region=region)
    fw = lib.resolve(FactorKind.feedwater_enthalpy, "steam", on, region=region)
    net = h.value * multiplier("t", h.unit, "GJ") - fw.value * multiplier("t", fw.unit, "GJ")
    return Coefficient(net, [h, fw])


def coal_equivalent(carrier: Carrier, on: dt.date, lib: FactorLibrary, options: AccountingOptions,
                    region: str = "CN") -> Coefficient | None:
    """tce per canonical unit of ``carrier``; None for carriers not converted (water, cooling).

    A park override of the NCV (a measured value) takes precedence over the Annex A
    coefficient: ``kgce = NCV / 29 307 kJ`` (GB/T 2589-2020 ch. 8).
    """
    if carrier in NOT_ENERGY:
        return None
    unit = _unit(carrier)
    if carrier is Carrier.electricity:
        if options.electricity_basis == "dengjia":
            f = lib.resolve(FactorKind.electricity_equivalent, "electricity", on, region=region)
        else:
            f = lib.resolve(FactorKind.coal_equivalent, "electricity", on, region=region, basis="dangliang")
        return Coefficient(multiplier(unit, f.unit, "tce") * f.value, [f])
    if carrier in (Carrier.heat, Carrier.steam):
        f = lib.resolve(FactorKind.coal_equivalent, "heat", on, region=region, basis="dangliang")
        per_gj = multiplier("GJ", f.unit, "tce") * f.value
        if carrier is Carrier.heat:
            return Coefficient(per_gj, [f])
        heat = steam_heat(on, lib, region)
        return Coefficient(heat.value * per_gj, [*heat.factors, f])
    try:
        ncv = lib.resolve(FactorKind.ncv, carrier.value, on, region=region)
    except FactorNotFound:
        ncv = None
    mass = mass_per_unit(carrier, on, lib, region) if carrier is not Carrier.natural_gas else Coefficient(1.0)
    base_unit = "m3" if carrier is Carrier.natural_gas else "kg"
    if ncv is not None and ncv.override:
        kgce = lib.resolve(FactorKind.kgce_heat_content, "coal_equivalent", on)
        per_base = multiplier(base_unit, ncv.unit, "kJ") * ncv.value / (multiplier("kgce", kgce.unit, "kJ") * kgce.value)
        return Coefficient(mass.value * per_base / 1000.0, [*mass.factors, ncv, kgce],
                           _ncv_wins(carrier, on, lib, region, ncv))
    f = lib.resolve(FactorKind.coal_equivalent, carrier.value, on, region=region)
    return Coefficient(mass.value * multiplier(base_unit, f.unit, "tce") * f.value, [*mass.factors, f])


def _ncv_wins(carrier: Carrier, on: dt.date, lib: FactorLibrary, region: str, ncv: Factor) -> list[str]:
    """A warning when a measured NCV silently wins over a park's own coal-equivalent coefficient."""
    try:
        ce = lib.resolve(FactorKind.coal_equivalent, carrier.value, on, region=region)
    except FactorNotFound:
        return []
    if not ce.override:
        return []
    return [f"{carrier.value} on {on}: the NCV override {ncv.id!r} is used and the coal-equivalent override "
            f"{ce.id!r} is not (GB/T 2589-2020 ch. 8: a measured NCV takes precedence); remove one of them"]


def combustion_factor(carrier: Carrier, on: dt.date, lib: FactorLibrary, region: str = "CN") -> Coefficient:
    """tCO₂ per canonical unit burnt: NCV × CC × OF × 44/12 (GB/T 32150-2015)."""
    ncv = lib.resolve(FactorKind.ncv, carrier.value, on, region=region)
    cc = lib.resolve(FactorKind.carbon_content, carrier.value, on, region=region)
    of = lib.resolve(FactorKind.oxidation, carrier.value, on, region=region)
    if carrier is Carrier.natural_gas:
        gj = multiplier("m3", ncv.unit, "GJ") * ncv.value
        mass = Coefficient(1.0)
    else:
        mass = mass_per_unit(carrier, on, lib, region)
        gj = mass.value * multiplier("kg", ncv.unit, "GJ") * ncv.value
    t_c = gj * multiplier("GJ", cc.unit, "tC") * cc.value
    oxidised = convert(of.value, of.unit, "dimensionless")
    return Coefficient(t_c * oxidised * CO2_PER_C, [*mass.factors, ncv, cc, of])


def heat_factor(carrier: Carrier, on: dt.date, lib: FactorLibrary, region: str = "CN") -> Coefficient:
    """tCO₂ per GJ of heat, or per t of steam (heat content × heat factor); a supplier's steam
    factor (an override for subject ``steam``) takes precedence."""
    if carrier is Carrier.steam:
        try:
            f = lib.resolve(FactorKind.emission_factor, "steam", on, region=region)
            return Coefficient(multiplier("t", f.unit, "tCO2") * f.value, [f])
        except FactorNotFound:
            heat = steam_heat(on, lib, region)
            f = lib.resolve(FactorKind.emission_factor, "heat", on, region=region)
            return Coefficient(heat.value * multiplier("GJ", f.unit, "tCO2") * f.value, [*heat.factors, f])
    f = lib.resolve(FactorKind.emission_factor, "heat", on, region=region)
    return Coefficient(multiplier("GJ", f.unit, "tCO2") * f.value, [f])


def grid_factor(on: dt.date, lib: FactorLibrary, region: str, basis: str) -> Coefficient:
    """tCO₂ per kWh of grid electricity."""
    f = lib.resolve(FactorKind.grid_emission_factor, "electricity", on, region=region, basis=basis)
    return Coefficient(multiplier("kWh", f.unit, "tCO2") * f.value, [f])


def _period_dates(ledger: pd.DataFrame) -> pd.Series:
    return pd.DatetimeIndex(ledger["period"]).tz_convert("Asia/Shanghai").date


def energy_rows(ledger: pd.DataFrame, lib: FactorLibrary, options: AccountingOptions,
                warnings: list[str] | None = None) -> pd.DataFrame:
    """The ledger with ``quantity_unit`` (canonical), ``tce`` and ``energy_factors`` (factor ids) added.

    Rows of carriers that are not converted (water, cooling) get tce 0 and no factor.
    Raises :class:`FactorNotFound` naming the carrier and date if a coefficient is missing; a
    choice between factors the user should know of is appended to ``warnings``.
    """
    out = ledger.copy()
    out["date"] = _period_dates(out)
    coef = np.zeros(len(out))
    ids = np.empty(len(out), dtype=object)
    for (carrier, day), idx in out.groupby(["carrier", "date"], sort=False).indices.items():
        c = coal_equivalent(Carrier(carrier), day, lib, options, options.grid_region)
        if c is not None and c.warnings and warnings is not None:
            warnings += [w for w in c.warnings if w not in warnings]
        coef[idx] = 0.0 if c is None else c.value
        ids[idx] = "" if c is None else c.factor_ids
    out["quantity_unit"] = [_unit(Carrier(c)) for c in out["carrier"]]
    out["tce"] = out["quantity"].to_numpy() * coef
    out["energy_factors"] = ids
    return out.drop(columns="date")


def emission_rows(ledger: pd.DataFrame, lib: FactorLibrary, options: AccountingOptions) -> pd.DataFrame:
    """CO₂ per ledger row: ``category``, ``scope``, ``tco2`` (location-based for electricity),
    ``tco2_market`` (electricity at the residual factor; equal to ``tco2`` elsewhere) and
    ``emission_factors``. Rows without an emission (renewables, water, cooling, feedstock,
    storage) are left out; biomass CO₂ has category ``biomass`` and is kept out of totals.
    """
    df = ledger.copy()
    df["date"] = _period_dates(df)
    parts = []
    for (carrier_s, day), g in df.groupby(["carrier", "date"], sort=False):
        carrier = Carrier(carrier_s)
        g = g[g["flow"] != "renewable"]
        if carrier in NOT_ENERGY or g.empty:
            continue
        g = g.copy()
        if carrier is Carrier.electricity:
            loc = grid_factor(day, lib, options.grid_region, options.grid_basis)
            try:
                mkt = grid_factor(day, lib, options.grid_region, options.residual_basis)
            except FactorNotFound:
                mkt = grid_factor(day, lib, "CN", options.residual_basis)
            g["category"] = np.where(g["quantity"] >= 0, "purchased_electricity", "exported_electricity")
            g["scope"] = 2
            g["tco2"] = g["quantity"] * loc.value
            g["tco2_market"] = g["quantity"] * mkt.value
            g["emission_factors"] = loc.factor_ids
            g["market_factors"] = mkt.factor_ids
        elif carrier in (Carrier.heat, Carrier.steam):
            f = heat_factor(carrier, day, lib, options.grid_region)
            g["category"] = np.where(g["quantity"] >= 0, "purchased_heat", "exported_heat")
            g["scope"] = 2
            g["tco2"] = g["quantity"] * f.value
            g["tco2_market"] = g["tco2"]
            g["emission_factors"] = f.factor_ids
            g["market_factors"] = f.factor_ids
        elif carrier in FUELS or carrier is Carrier.biomass:
            g = g[g["usage"] != "feedstock"]  # 原料用能 is not burnt; its carbon is not emitted here
            if g.empty:
                continue
            f = combustion_factor(carrier, day, lib, options.grid_region)
            g["category"] = "biomass" if carrier is Carrier.biomass else "fuel_combustion"
            g["scope"] = 1
            g["tco2"] = g["quantity"] * f.value
            g["tco2_market"] = g["tco2"]
            g["emission_factors"] = f.factor_ids
            g["market_factors"] = f.factor_ids
        else:
            continue
        parts.append(g)
    if not parts:
        empty = df.iloc[:0].drop(columns="date")
        for col, dtype in (("category", object), ("scope", int), ("tco2", float), ("tco2_market", float),
                           ("emission_factors", object), ("market_factors", object)):
            empty[col] = pd.Series(dtype=dtype)
        return empty
    return pd.concat(parts).drop(columns="date")
