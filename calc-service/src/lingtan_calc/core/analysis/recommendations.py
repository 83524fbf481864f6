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
``efficiency_drop``     a boiler or CHP whose efficiency is below the best month of the last year: the
                        fuel it would not have burnt at that efficiency
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


@dataclass
class Evidence:
    """What the rules look at, for one entity over ``days`` days."""

    entity: str
    days: float
    prices: Prices
    band_kwh: dict[str, float] = field(default_factory=dict)  # electricity bought per TOU band
    units: pd.DataFrame = field(default_factory=pd.DataFrame)  # load KPIs per unit (enterprise, unit_id, ...)
    hourly_import_kwh: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    efficiencies: pd.DataFrame = field(default_factory=pd.DataFrame)  # node, kind, now, best, fuel_tce


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
    if price is None or len(s) < 24 * 7:
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
        out.append({"rule": "efficiency_drop", "subject": r.node, "saving_tce": tce,
                    "saving_cny": tce * p.fuel_cny_per_tce if p.fuel_cny_per_tce else 0.0,
                    "saving_tco2": tce * p.fuel_tco2_per_tce if p.fuel_tco2_per_tce else 0.0,
                    "evidence": {"kind": r.kind, "efficiency": r.now, "best_efficiency": r.best, "fuel_tce": r.fuel_tce,
                                 "days": ev.days},
                    "method": f"{r.node} ({r.kind}) ran at {r.now:.1%} against {r.best:.1%} in its best month of the "
                              f"last year; at the best efficiency its {r.fuel_tce:,.2f} tce of fuel in {ev.days:g} d would "
                              f"have been {r.fuel_tce * r.now / r.best:,.2f} tce, × 365/{ev.days:g} d"})
    return out


RULES = (valley_shift, baseload_high, peak_shaving, efficiency_drop)


def recommend(ev: Evidence) -> list[dict[str, Any]]:
    """Every rule's recommendations for ``ev``, ranked by the estimated saving in CNY, then tce."""
    found = [r for rule in RULES for r in rule(ev)]
    for r in found:
        r["entity"] = ev.entity
    return sorted(found, key=lambda r: (-r["saving_cny"], -r["saving_tce"]))
