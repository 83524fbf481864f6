"""The energy balance table and the efficiencies of an entity and range (docs/analysis.md §5, §6),
as the calc API answers them and the reports print them."""

from __future__ import annotations

import pandas as pd

from lingtan.errors import ApiError
from lingtan.park.carriers import CARRIER_UNITS, Carrier
from lingtan_calc.adapters.energy_reads import flow_rows
from lingtan_calc.core.analysis.balance import (
    balance_table,
    balance_warnings,
    boundary_check,
    closure,
    conversion_losses,
)
from lingtan_calc.core.analysis.efficiency import conversion_efficiencies, load_kpis
from lingtan_calc.service.analysis import energy, granularity, no_data, records


def topology_nodes(park) -> pd.DataFrame:
    """``id``, ``name``, ``type``, ``kind`` and ``rated_efficiency`` of every topology node of the park model."""
    return pd.DataFrame([(n.id, n.name, n.type.value, n.kind, n.rated_efficiency) for n in park.topology.nodes],
                        columns=["id", "name", "type", "kind", "rated_efficiency"])


def own_edges(park, flows: pd.DataFrame, entity: str) -> pd.DataFrame:
    """The flows of ``entity``: all of them for the park, for an enterprise the edges its own meters measure."""
    if entity == "park":
        return flows
    mine = {m.id for e in park.enterprises if e.id == entity for u in e.units for m in u.meters}
    return flows[flows["meter"].isin(mine)]


def _entity_flows(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return own_edges(svc.park, flow_rows(svc.client, svc.park.park.id, granularity(start, end), start, end), entity)


def _units(carriers) -> dict[str, str]:
    return {c: CARRIER_UNITS[Carrier(c)].counter for c in sorted(set(carriers)) if c in Carrier.__members__}


EMPTY_TABLE = ["row", "node", "carrier", "quantity", "tce", "node_name", "kind", "throughput"]


def balance_body(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp) -> dict:
    """The 能源平衡表 of ``entity`` (docs/analysis.md §5)."""
    flows, accounted = _entity_flows(svc, entity, start, end), energy(svc, entity, start, end)
    if flows.empty and accounted.empty:
        raise no_data(entity, start, end)
    table = balance_table(flows, topology_nodes(svc.park)) if not flows.empty else pd.DataFrame(columns=EMPTY_TABLE)
    closed = closure(table) if not table.empty else pd.DataFrame(columns=["carrier", "sources", "imbalance", "imbalance_tce"])
    losses = conversion_losses(table) if not table.empty else pd.DataFrame(columns=["node", "loss_tce"])
    check = boundary_check(table, accounted) if entity == "park" else pd.DataFrame(
        columns=["carrier", "what", "topology", "accounted", "difference", "ok"])
    warnings = balance_warnings(table) if not table.empty else []
    warnings += [f"{r.carrier} {r.what}: the topology's edges carry {r.topology:.6g}, the accounting's boundary meters "
                 f"{r.accounted:.6g} (difference {r.difference:.6g}): an edge is missing, measured by another point, or "
                 "its meter is not counted (counted: false)" for r in check.itertuples() if not r.ok]
    boundary = accounted.groupby(["carrier", "flow"], as_index=False)[["quantity", "tce"]].sum()
    return {"entity": entity, "start": start.isoformat(), "end": end.isoformat(),
            "units": {"quantity": _units(list(table["carrier"]) + list(boundary["carrier"])), "tce": "tce"},
            "rows": records(table), "closure": records(closed), "conversion_losses": records(losses),
            "boundary": records(boundary), "boundary_check": records(check), "warnings": warnings,
            "total_tce": {"accounted": float(accounted["tce"].sum()),
                          "end_use": float(table.loc[table["row"] == "end_use", "tce"].sum()),
                          "conversion_loss": float(losses["loss_tce"].sum())}}


def unit_loads(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, carrier: str) -> pd.DataFrame:
    """Load KPIs per production unit of one carrier: each unit's own use, what its meters bring in less what it
    passes on (moved to the supplier's meter upstream)."""
    hourly = energy(svc, None if entity == "park" else entity, start, end, period="hour")
    hourly = hourly[(hourly["carrier"] == carrier) & hourly["flow"].isin(["input", "renewable", "delivered"])]
    units = []
    for (enterprise, unit_id), part in hourly.groupby(["enterprise", "unit_id"], sort=True):
        series = part.groupby("time")["quantity"].sum()
        if series.sum() > 0:
            units.append({"enterprise": enterprise, "unit_id": unit_id, **load_kpis(series)})
    return pd.DataFrame(units, columns=["enterprise", "unit_id", "mean_kw", "peak_kw", "load_factor", "baseload_kw",
                                        "baseload_share", "non_workday_ratio"])


def efficiency_body(svc, entity: str, start: pd.Timestamp, end: pd.Timestamp, carrier: str) -> dict:
    """Conversion efficiencies and unit load KPIs of ``entity`` (docs/analysis.md §6)."""
    if carrier not in Carrier.__members__:
        raise ApiError(400, "bad_carrier", f"carrier {carrier!r} is not one of {', '.join(Carrier.__members__)}", "carrier")
    flows = _entity_flows(svc, entity, start, end)
    conversion = conversion_efficiencies(flows, topology_nodes(svc.park)) if not flows.empty else pd.DataFrame()
    loads = unit_loads(svc, entity, start, end, carrier)
    if conversion.empty and loads.empty:
        raise no_data(entity, start, end)
    return {"entity": entity, "start": start.isoformat(), "end": end.isoformat(), "carrier": carrier,
            "units": {"efficiency": "1", "cop": "1", "loss": "canonical unit", "mean_kw": "kW (rate of the carrier)",
                      "baseload_share": "1"},
            "conversion": records(conversion), "load": records(loads)}
