"""The daily evaluation of the recommendations (docs/analysis.md §7).

For the park and each enterprise it gathers the :class:`~lingtan_calc.core.analysis.recommendations.Evidence`
of the last :data:`WINDOW_DAYS` days from the accounted series (hourly electricity by band and
unit, the conversion nodes' monthly efficiencies of the last year), applies the rules of
:mod:`lingtan_calc.core.analysis.recommendations` and stores the result
(:mod:`lingtan_calc.adapters.recommendation_store`). The scheduler runs it once a day after the
daily late-data pass; ``POST /api/v1/recommendations/evaluate`` runs it on demand.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lingtan.park.carriers import Carrier
from lingtan_calc.adapters.energy_reads import bought_per_hour, emission_rows, energy_rows, flow_rows
from lingtan_calc.adapters.recommendation_store import store_evaluation
from lingtan_calc.core.accounting.convert import AccountingOptions, coal_equivalent, grid_factor
from lingtan_calc.core.accounting.factors import FactorLibrary
from lingtan_calc.core.analysis.cost import demand_charge, energy_cost, hourly_prices
from lingtan_calc.core.analysis.efficiency import conversion_efficiencies
from lingtan_calc.core.analysis.limits import compare_with_limits
from lingtan_calc.core.analysis.recommendations import Evidence, Prices, recommend
from lingtan_calc.core.analysis.tariffs import Band, Tariff, tariff_for
from lingtan_calc.service.balance import own_edges, topology_nodes, unit_loads
from lingtan_calc.service.benchmarks import per_product

log = logging.getLogger(__name__)
TZ = "Asia/Shanghai"
#: the recent window the rules judge [days]: a month, long enough to hold weekdays and weekends
WINDOW_DAYS = 30
#: converters judged against their own best month
FUEL_CONVERTERS = ("boiler", "chp")


def _prices(tariff: Tariff, entity: str, summary_price: float, day, lib: FactorLibrary, options: AccountingOptions,
            fuel: tuple[float | None, float | None], per_tce: tuple[float | None, float | None]) -> Prices:
    elec = tariff.electricity
    charge = elec.demand_charge if elec.demand_charge and elec.demand_charge.basis == "max_demand" else None
    tce = coal_equivalent(Carrier.electricity, day, lib, options, options.grid_region)
    grid = grid_factor(day, lib, options.grid_region, options.grid_basis)
    return Prices(peak=elec.price(Band.peak) if Band.peak in elec.prices else 0.0,
                  valley=elec.price(Band.valley) if Band.valley in elec.prices else 0.0,
                  average_electricity=summary_price, grid_factor_t_per_mwh=grid.value * 1000.0,
                  tce_per_kwh=tce.value if tce else 0.0, demand_per_kw_month=charge.price if charge else None,
                  fuel_cny_per_tce=fuel[0], fuel_tco2_per_tce=fuel[1],
                  contract_kw=charge.contract_kw.get(entity) if charge else None,
                  excess_threshold=charge.excess_threshold if charge else 1.05,
                  excess_factor=charge.excess_factor if charge else 2.0, export_price=elec.export_price,
                  cny_per_tce=per_tce[0], tco2_per_tce=per_tce[1])


def _per_tce(all_costs: pd.DataFrame, energy: pd.DataFrame, emissions: pd.DataFrame) -> tuple[float | None, float | None]:
    """The entity's energy cost per tce bought [CNY/tce] and its CO₂ per tce consumed [tCO2/tce]."""
    bought = float(energy.loc[energy["flow"] == "input", "tce"].sum())
    used = float(energy.loc[energy["usage"] != "non_production", "tce"].sum())
    co2 = float(emissions.loc[emissions["usage"] != "non_production", "tco2"].sum())
    return (float(all_costs["cost"].sum()) / bought if bought > 0 else None), (co2 / used if used > 0 else None)


def _products(svc, entity: str, end: pd.Timestamp) -> pd.DataFrame:
    """The products of the last whole month before ``end`` against their limits (docs/analysis.md §7)."""
    month = end.normalize().replace(day=1)
    found = per_product(svc, entity, month - pd.DateOffset(months=1), month)
    return compare_with_limits(found, svc.limits)[0] if not found.empty else pd.DataFrame()


def _fuel_prices(tariff: Tariff, energy: pd.DataFrame, emissions: pd.DataFrame) -> tuple[float | None, float | None]:
    """Natural gas per tce: the tariff's price / the accounted tce per m³, and the accounted tCO₂ per tce."""
    gas = energy[(energy["carrier"] == "natural_gas") & (energy["flow"] == "input")]
    qty, tce = float(gas["quantity"].sum()), float(gas["tce"].sum())
    if tce <= 0:
        return None, None
    price = tariff.carriers.get("natural_gas")
    co2 = float(emissions[(emissions["carrier"] == "natural_gas") & (emissions["category"] == "fuel_combustion")]["tco2"].sum())
    return (price * qty / tce if price is not None else None), (co2 / tce if co2 > 0 else None)


def _efficiency_history(svc, nodes: pd.DataFrame, end: pd.Timestamp, entity: str) -> pd.DataFrame:
    """Per fuel converter: the efficiency of the window, what it is judged against (its rated efficiency, else
    the best monthly efficiency of the last year), the fuel."""
    start = end - pd.Timedelta(days=WINDOW_DAYS)
    park_id = svc.park.park.id
    recent = own_edges(svc.park, flow_rows(svc.client, park_id, "day", start, end), entity)
    year_ago = (end - pd.DateOffset(months=12)).normalize().replace(day=1)
    monthly = own_edges(svc.park, flow_rows(svc.client, park_id, "month", year_ago, end), entity)
    conv = nodes[nodes["kind"].isin(FUEL_CONVERTERS)]
    if recent.empty or conv.empty:
        return pd.DataFrame(columns=["node", "kind", "now", "best", "fuel_tce", "reference"])
    now = conversion_efficiencies(recent, conv).set_index("node")
    rows = []
    for node in conv.itertuples():
        figure = "total_efficiency" if node.kind == "chp" else "efficiency"
        best = [conversion_efficiencies(part, conv[conv["id"] == node.id]).iloc[0].get(figure, np.nan)
                for _, part in monthly.groupby("time")] if not monthly.empty else []
        fuel = float(recent.loc[recent["target"] == node.id, "tce"].sum())
        rated = node.rated_efficiency if pd.notna(node.rated_efficiency) else None
        reference = float(rated) if rated else (float(np.nanmax(best)) if best and np.isfinite(best).any() else np.nan)
        rows.append((node.id, node.kind, float(now.loc[node.id].get(figure, np.nan)), reference, fuel,
                     "rated" if rated else "best_month"))
    return pd.DataFrame(rows, columns=["node", "kind", "now", "best", "fuel_tce", "reference"])


def evidence_for(svc, entity: str, end: pd.Timestamp, nodes: pd.DataFrame) -> Evidence | None:
    """The evidence of ``entity`` for the :data:`WINDOW_DAYS` days before ``end``; None without a tariff or data."""
    start = end - pd.Timedelta(days=WINDOW_DAYS)
    tariff = tariff_for(svc.tariffs, entity, (end - pd.Timedelta(days=1)).date())
    park_id = svc.park.park.id
    every = bought_per_hour(svc.client, park_id, start, end, entity, [])  # summed per hour by InfluxDB
    bought = every[every["carrier"] == "electricity"]
    if tariff is None or bought.empty:
        return None
    elec = bought.groupby("time")["quantity"].sum()
    every_cost = energy_cost(every, svc.tariffs)  # each carrier costed once; electricity's rows are its bands
    costs = every_cost[every_cost["carrier"] == "electricity"]
    exported = bought_per_hour(svc.client, park_id, start, end, entity, [], flow="export")
    exported = -exported[exported["carrier"] == "electricity"].groupby("time")["quantity"].sum()  # export rows are < 0
    demand = demand_charge(elec, entity, svc.tariffs, start, end)
    kwh = float(costs["quantity"].sum())
    average = (float(costs["cost"].sum()) + float(demand["cost"].sum())) / kwh if kwh else 0.0
    daily = energy_rows(svc.client, park_id, "day", start, end, entity)
    emissions = emission_rows(svc.client, park_id, "day", start, end, entity)
    options = svc.calculator.options
    per_tce = _per_tce(every_cost, daily, emissions)
    prices = _prices(tariff, entity, average, end.date(), svc.calculator.lib, options,
                     _fuel_prices(tariff, daily, emissions), per_tce)
    return Evidence(entity=entity, days=float(WINDOW_DAYS), prices=prices,
                    band_kwh=costs.groupby("band")["quantity"].sum().to_dict(),
                    units=unit_loads(svc, entity, start, end, "electricity"), hourly_import_kwh=elec,
                    efficiencies=_efficiency_history(svc, nodes, end, entity), hourly_export_kwh=exported,
                    hourly_price=hourly_prices(pd.DatetimeIndex(exported.index), entity, svc.tariffs),
                    products=_products(svc, entity, end))


def evaluate(service, end: pd.Timestamp | None = None) -> dict[str, dict[str, int]]:
    """Evaluate every entity's recommendations for the window ending ``end`` (default: today 00:00) and store them."""
    end = (pd.Timestamp.now(tz=TZ) if end is None else pd.Timestamp(end).tz_convert(TZ)).normalize()
    nodes = topology_nodes(service.park)
    out = {}
    for entity in ["park", *(e.id for e in service.park.enterprises)]:
        ev = evidence_for(service, entity, end, nodes)
        found = recommend(ev) if ev is not None else []
        with service.sessions() as s:
            out[entity] = store_evaluation(s, entity, found)
    log.info("recommendations evaluated for the %d days before %s: %s", WINDOW_DAYS, end.date(), out)
    return out
