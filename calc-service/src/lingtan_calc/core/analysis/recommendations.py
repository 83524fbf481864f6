"""Rules that turn the analysis into ranked recommendations (推荐用能策略), each with its evidence,
an estimated annual saving in tce, CNY and tCO₂, and how the estimate was made.

Pure functions: the service gathers the :class:`Evidence` of an entity over a recent window
(docs/analysis.md §7) and :func:`recommend` applies every rule. An estimate scales the window
to a year (× 365 / days of the window) and says so; it is a first estimate for a manager to
check, not a measured saving.

======================  ==============================================================================
``valley_shift``        electricity bought in the peak bands: moving :data:`SHIFT_SHARE` of it to the
                        valley saves the price difference (峰谷电价差)
``baseload_high``       a unit whose night base load is a large share of its energy: lowering the base
                        load by :data:`BASELOAD_CUT` saves that energy around the clock
``peak_shaving``        a demand charge by maximum demand whose peak lies far above the 95th percentile
                        of the hourly demand: shaving the peak to it saves demand charge every month
``efficiency_drop``     a boiler or CHP whose efficiency is below its rated efficiency (or, without one,
                        the best month of the last year): the fuel it would not have burnt at that one
``contract_demand``     a contract demand (合同最大需量) far from the one that would have cost least for the
                        window's maximum demand: the demand charge the better contract saves
``pv_export``           PV electricity exported at a feed-in price below what the entity pays in the
                        same hours: the difference on :data:`SELF_USE_SHARE` of it used on site instead
``product_limit``       a product's specific consumption above the 限定值 (grade 3) of its
                        单位产品能源消耗限额 standard, or above its grade 1: the energy above the grade
======================  ==============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: the share of peak-band energy a first estimate moves to the valley: loads that can wait a few hours
#: (charging, pumping, batch heating) are commonly a tenth of an industrial site's peak-band use
SHIFT_SHARE = 0.10
#: a valley shift is worth recommending above this share of electricity bought in the peak bands
PEAK_SHARE_MIN = 0.35
#: a base load above this share of a unit's energy runs mostly when nothing is produced (nights, weekends)
BASELOAD_SHARE_MIN = 0.5
#: the base-load reduction a first estimate assumes (idle equipment switched off, standby settings)
BASELOAD_CUT = 0.10
#: a peak more than this far above the 95th percentile of hourly demand is a short spike worth shaving
PEAK_EXCESS_MIN = 0.15
#: an efficiency this many points below the unit's own best month is a drop worth looking at
EFFICIENCY_DROP_MIN = 0.03
#: a contract change worth recommending saves at least this share of the month's demand charge: a
#: contract demand can be changed only with notice to the utility, and a small gain is within the
#: month-to-month spread of the maximum demand
CONTRACT_SAVING_MIN = 0.05
#: the share of the exported PV energy a first estimate uses on site instead (a battery, or loads
#: moved into the midday hours); a park rarely absorbs all of it
SELF_USE_SHARE = 0.3
#: exports below this share of the window's electricity bought are too small to act on
EXPORT_SHARE_MIN = 0.02
MONTHS_PER_YEAR = 12.0
HOURS_PER_YEAR = 8760.0
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True)
class Prices:
    """Prices and factors the estimates use: average prices [CNY/kWh], a fuel price [CNY/tce], the grid
    factor [tCO2/MWh], the electricity coefficient [tce/kWh] and the demand price [CNY/kW·month]."""

    peak: float
    valley: float
    average_electricity: float
    grid_factor_t_per_mwh: float
    tce_per_kwh: float
    demand_per_kw_month: float | None = None
    fuel_cny_per_tce: float | None = None
    fuel_tco2_per_tce: float | None = None
    contract_kw: float | None = None  # the entity's contract demand (合同最大需量)
    excess_threshold: float = 1.05
    excess_factor: float = 2.0
    export_price: float | None = None  # feed-in price [CNY/kWh]
    cny_per_tce: float | None = None  # the entity's energy cost per tce bought
    tco2_per_tce: float | None = None  # the entity's CO₂ per tce


@dataclass
class Evidence:
    """What the rules look at, for one entity over ``days`` days."""

    entity: str
    days: float
    prices: Prices
    band_kwh: dict[str, float] = field(default_factory=dict)  # electricity bought per TOU band
    units: pd.DataFrame = field(default_factory=pd.DataFrame)  # load KPIs per unit (enterprise, unit_id, ...)
    hourly_import_kwh: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    # node, kind, now, best (the efficiency judged against), fuel_tce, reference ("rated" or "best_month")
    efficiencies: pd.DataFrame = field(default_factory=pd.DataFrame)
    hourly_export_kwh: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    hourly_price: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # CNY/kWh bought, per hour
    products: pd.DataFrame = field(default_factory=pd.DataFrame)  # limits.compare_with_limits rows
    product_months: float = 1.0  # the months the products' figures cover


def _saving(kwh: float, p: Prices) -> dict[str, float]:
    return {"saving_tce": kwh * p.tce_per_kwh, "saving_tco2": kwh * p.grid_factor_t_per_mwh / 1000.0}


def valley_shift(ev: Evidence) -> list[dict[str, Any]]:
    peak = ev.band_kwh.get("peak", 0.0) + ev.band_kwh.get("critical_peak", 0.0)
    total = sum(ev.band_kwh.values())
    if total <= 0 or peak / total < PEAK_SHARE_MIN or ev.prices.peak <= ev.prices.valley:
        return []
    moved = SHIFT_SHARE * peak * DAYS_PER_YEAR / ev.days
    cny = moved * (ev.prices.peak - ev.prices.valley)
    return [{"rule": "valley_shift", "subject": ev.entity, "saving_cny": cny, "saving_tce": 0.0, "saving_tco2": 0.0,
             "evidence": {"peak_kwh": peak, "total_kwh": total, "peak_share": peak / total, "days": ev.days},
             "method": f"{SHIFT_SHARE:.0%} of the peak-band energy ({peak:,.0f} kWh in {ev.days:g} d, "
                       f"{peak / total:.0%} of all) moved to the valley, × 365/{ev.days:g} d, × "
                       f"({ev.prices.peak:.4f} − {ev.prices.valley:.4f}) CNY/kWh; the energy itself is unchanged"}]


def baseload_high(ev: Evidence) -> list[dict[str, Any]]:
    out = []
    for r in ev.units.itertuples():
        if not np.isfinite(r.baseload_share) or r.baseload_share < BASELOAD_SHARE_MIN or r.baseload_kw <= 0:
            continue
        kwh = BASELOAD_CUT * r.baseload_kw * HOURS_PER_YEAR
        out.append({"rule": "baseload_high", "subject": f"{r.enterprise}/{r.unit_id}", "saving_cny":
                    kwh * ev.prices.average_electricity, **_saving(kwh, ev.prices),
                    "evidence": {"baseload_kw": r.baseload_kw, "baseload_share": r.baseload_share,
                                 "mean_kw": r.mean_kw, "days": ev.days},
                    "method": f"the night base load {r.baseload_kw:,.1f} kW is {r.baseload_share:.0%} of the unit's "
                              f"energy; {BASELOAD_CUT:.0%} less of it for 8,760 h = {kwh:,.0f} kWh a year, at "
                              f"{ev.prices.average_electricity:.4f} CNY/kWh and {ev.prices.grid_factor_t_per_mwh:.4f} tCO2/MWh"})
    return out


def peak_shaving(ev: Evidence) -> list[dict[str, Any]]:
    s = ev.hourly_import_kwh.dropna()
    price = ev.prices.demand_per_kw_month
    if price is None or ev.prices.contract_kw is not None or len(s) < 24 * 7:  # a contract: contract_demand
        return []
    peak, p95 = float(s.max()), float(s.quantile(0.95))
    if p95 <= 0 or (peak - p95) / p95 < PEAK_EXCESS_MIN:
        return []
    cny = (peak - p95) * price * 12
    return [{"rule": "peak_shaving", "subject": ev.entity, "saving_cny": cny, "saving_tce": 0.0, "saving_tco2": 0.0,
             "evidence": {"peak_kw": peak, "p95_kw": p95, "hours": len(s), "days": ev.days},
             "method": f"the maximum demand {peak:,.0f} kW is {(peak - p95) / p95:.0%} above the 95th percentile "
                       f"{p95:,.0f} kW of the hourly demand; shaving it to that level saves {peak - p95:,.0f} kW × "
                       f"{price:g} CNY/kW·month × 12 months (hourly means: the 15-min peak is higher still)"}]


def efficiency_drop(ev: Evidence) -> list[dict[str, Any]]:
    out = []
    for r in ev.efficiencies.itertuples():
        if not (np.isfinite(r.now) and np.isfinite(r.best)) or r.best - r.now < EFFICIENCY_DROP_MIN or r.fuel_tce <= 0:
            continue
        tce = r.fuel_tce * (1.0 - r.now / r.best) * DAYS_PER_YEAR / ev.days
        p = ev.prices
        against = "its rated" if getattr(r, "reference", "best_month") == "rated" else "in its best month of the last year"
        out.append({"rule": "efficiency_drop", "subject": r.node, "saving_tce": tce,
                    "saving_cny": tce * p.fuel_cny_per_tce if p.fuel_cny_per_tce else 0.0,
                    "saving_tco2": tce * p.fuel_tco2_per_tce if p.fuel_tco2_per_tce else 0.0,
                    "evidence": {"kind": r.kind, "efficiency": r.now, "best_efficiency": r.best, "fuel_tce": r.fuel_tce,
                                 "reference": getattr(r, "reference", "best_month"), "days": ev.days},
                    "method": f"{r.node} ({r.kind}) ran at {r.now:.1%} against {r.best:.1%} {against}; at that "
                              f"efficiency its {r.fuel_tce:,.2f} tce of fuel in {ev.days:g} d would "
                              f"have been {r.fuel_tce * r.now / r.best:,.2f} tce, × 365/{ev.days:g} d"})
    return out


def contract_demand(ev: Evidence) -> list[dict[str, Any]]:
    p, s = ev.prices, ev.hourly_import_kwh.dropna()
    if p.contract_kw is None or p.demand_per_kw_month is None or len(s) < 24 * 7:
        return []
    peak, contract = float(s.max()), p.contract_kw

    def charged(c: float) -> float:
        return c + p.excess_factor * max(0.0, peak - p.excess_threshold * c)

    # charged(c) falls while the peak exceeds the threshold and rises after: least at peak / threshold
    best = peak / p.excess_threshold
    now, then = charged(contract), charged(best)
    if now <= 0 or (now - then) / now < CONTRACT_SAVING_MIN:
        return []
    cny = (now - then) * p.demand_per_kw_month * MONTHS_PER_YEAR
    direction = "raise" if best > contract else "lower"
    return [{"rule": "contract_demand", "subject": ev.entity, "saving_cny": cny, "saving_tce": 0.0, "saving_tco2": 0.0,
             "evidence": {"contract_kw": contract, "peak_kw": peak, "suggested_contract_kw": best,
                          "charged_kw": now, "charged_kw_suggested": then, "days": ev.days},
             "method": f"{direction} the contract demand from {contract:,.0f} kW to {best:,.0f} kW (the maximum "
                       f"demand {peak:,.0f} kW / {p.excess_threshold:g}): the month is charged {then:,.0f} kW instead "
                       f"of {now:,.0f} kW (the contract + {p.excess_factor:g} × the excess above "
                       f"{p.excess_threshold:.0%} of it), × {p.demand_per_kw_month:g} CNY/kW·month × 12; hourly "
                       "means: check the utility meter's 15-min maximum demand before declaring"}]


def pv_export(ev: Evidence) -> list[dict[str, Any]]:
    exported = ev.hourly_export_kwh.dropna()
    bought = float(ev.hourly_import_kwh.sum())
    total = float(exported.sum())
    if ev.prices.export_price is None or total <= 0 or bought <= 0 or total / bought < EXPORT_SHARE_MIN:
        return []
    paid = ev.hourly_price.reindex(exported.index)
    avoided = float((exported * paid).sum() / total) if paid.notna().all() else ev.prices.average_electricity
    gain = avoided - ev.prices.export_price
    if gain <= 0:
        return []
    kwh = SELF_USE_SHARE * total * DAYS_PER_YEAR / ev.days
    return [{"rule": "pv_export", "subject": ev.entity, "saving_cny": kwh * gain, "saving_tce": 0.0, "saving_tco2": 0.0,
             "evidence": {"exported_kwh": total, "bought_kwh": bought, "export_price": ev.prices.export_price,
                          "avoided_price": avoided, "days": ev.days},
             "method": f"{total:,.0f} kWh exported in {ev.days:g} d at {ev.prices.export_price:.4f} CNY/kWh while "
                       f"electricity bought in the same hours costs {avoided:.4f} CNY/kWh; {SELF_USE_SHARE:.0%} of it "
                       f"used on site (storage, loads moved to midday), × 365/{ev.days:g} d, × the difference; "
                       "the energy and CO₂ stay as they are (the PV output is the same)"}]


def product_limit(ev: Evidence) -> list[dict[str, Any]]:
    out = []
    p = ev.prices
    for r in ev.products.itertuples():
        over = not r.compliant
        tce = (r.excess_tce if over else r.to_grade_1_tce) * MONTHS_PER_YEAR / ev.product_months
        if tce <= 0:
            continue
        target = r.grade_3 if over else r.grade_1
        out.append({"rule": "product_limit", "subject": f"{r.entity}/{r.product}", "saving_tce": tce,
                    "saving_cny": tce * p.cny_per_tce if p.cny_per_tce else 0.0,
                    "saving_tco2": tce * p.tco2_per_tce if p.tco2_per_tce else 0.0,
                    "evidence": {"specific": r.specific, "unit": r.unit, "grade": None if over else int(r.grade),
                                 "grade_1": r.grade_1, "grade_3": r.grade_3, "standard": r.standard,
                                 "limit_id": r.limit_id, "output": r.output, "output_unit": r.output_unit,
                                 "months": ev.product_months, "confidence": r.confidence},
                    "method": (f"{r.product}: {r.specific:,.1f} {r.unit} "
                               + (f"is above the limit (限定值, grade 3) {r.grade_3:g} of {r.standard}: the plant must "
                                  "bring it down to the limit" if over else
                                  f"reaches grade {int(r.grade)} of {r.standard}; grade 1 is {r.grade_1:g}")
                               + f"; the energy above {target:g} {r.unit} at the output of {ev.product_months:g} "
                               f"month(s) × 12/{ev.product_months:g}, at the entity's energy cost and CO₂ per tce")})
    return out


RULES = (valley_shift, baseload_high, peak_shaving, efficiency_drop, contract_demand, pv_export, product_limit)


def recommend(ev: Evidence) -> list[dict[str, Any]]:
    """Every rule's recommendations for ``ev``, ranked: a product over its mandatory limit first, then by
    the estimated saving in CNY, then tce."""
    found = [r for rule in RULES for r in rule(ev)]
    for r in found:
        r["entity"] = ev.entity
    return sorted(found, key=lambda r: (r["rule"] != "product_limit" or r["evidence"]["grade"] is not None,
                                        -r["saving_cny"], -r["saving_tce"]))
