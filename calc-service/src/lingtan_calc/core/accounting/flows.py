"""Energy flow along the park model's topology: per edge, and input/output/loss per conversion node.

Each edge of ``topology`` names the meter (and counter point) that measures it; its energy
per period is that point's consumption, in physical units and in tce (当量值 by default).
A conversion node's loss is its input minus its output in tce. The Sankey diagram and the
energy-balance work read these series (``acc_flow``, ``acc_node``).
"""

from __future__ import annotations

import logging

import pandas as pd

from lingtan.park.carriers import Carrier, Kind
from lingtan.park.model import NodeType, Park
from lingtan_calc.core.accounting.convert import AccountingOptions, coal_equivalent
from lingtan_calc.core.accounting.factors import FactorLibrary, FactorNotFound

log = logging.getLogger(__name__)
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("energy flow in physical units only: %s", message)


FLOW_COLUMNS = ["period", "source", "target", "carrier", "meter", "point", "quantity", "tce"]
NODE_COLUMNS = ["period", "node", "kind", "input_tce", "output_tce", "loss_tce"]


def edge_points(park: Park) -> pd.DataFrame:
    """The counter point that measures each edge (the edge's ``point``, or its meter's only counter)."""
    meters = {m.id: m for e in park.enterprises for u in e.units for m in u.meters}
    rows = []
    for edge in park.topology.edges:
        meter = meters[edge.meter]
        if edge.point is not None:
            point = edge.point
        else:
            counters = [p.id for p in meter.points if p.kind is Kind.counter]
            rates = [p.id for p in meter.points if p.kind is Kind.rate]
            if len(counters) > 1 or (not counters and len(rates) != 1):
                raise ValueError(f"topology edge {edge.source}->{edge.target}: meter {meter.id!r} has "
                                 f"{len(counters)} counters and {len(rates)} rates; name the edge's point")
            point = counters[0] if counters else rates[0]  # a rate-only meter: its energy is integrated
        rows.append((edge.source, edge.target, edge.carrier.value, edge.meter, point))
    return pd.DataFrame(rows, columns=["source", "target", "carrier", "meter", "point"])


def energy_flows(park: Park, quantities: pd.DataFrame, lib: FactorLibrary,
                 options: AccountingOptions | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(flows per edge and period, conversion nodes per period) from per-point quantities."""
    options = options or AccountingOptions()
    edges = edge_points(park)
    flows = edges.merge(quantities[["period", "point", "quantity"]], on="point", how="inner")
    if flows.empty:
        return pd.DataFrame(columns=FLOW_COLUMNS), pd.DataFrame(columns=NODE_COLUMNS)
    dates = pd.DatetimeIndex(flows["period"]).tz_convert("Asia/Shanghai").date
    coef = {}
    for carrier, day in set(zip(flows["carrier"], dates, strict=True)):
        try:
            c = coal_equivalent(Carrier(carrier), day, lib, options, options.grid_region)
        except FactorNotFound as exc:
            # a monitored flow without a coefficient (e.g. biomass fuel with no measured NCV):
            # its physical quantity is still reported, its tce is unknown rather than invented
            _warn_once(str(exc))
            c = None
            coef[(carrier, day)] = float("nan")
            continue
        coef[(carrier, day)] = 0.0 if c is None else c.value
    flows["tce"] = flows["quantity"] * [coef[(c, d)] for c, d in zip(flows["carrier"], dates, strict=True)]
    # a node whose inputs include an unknown tce has an unknown loss (NaN propagates through the sums)
    flows = flows[FLOW_COLUMNS]
    rows = []
    for node in park.topology.nodes:
        if node.type is not NodeType.conversion:
            continue
        inflow = flows[flows["target"] == node.id].groupby("period")["tce"].sum(min_count=1)
        outflow = flows[flows["source"] == node.id].groupby("period")["tce"].sum(min_count=1)
        both = pd.concat([inflow.rename("input_tce"), outflow.rename("output_tce")], axis=1)
        for period, r in both.iterrows():
            rows.append((period, node.id, node.kind, r["input_tce"], r["output_tce"], r["input_tce"] - r["output_tce"]))
    return flows, pd.DataFrame(rows, columns=NODE_COLUMNS)
