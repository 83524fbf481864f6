"""The accounting boundary: which metered quantities count for which entity, and with which sign.

GB/T 2589-2020 (ch. 5, 边界划分) counts the energy that crosses an energy-using unit's
boundary: what enters is added, what the unit supplies to others is deducted at the same
coefficient, recovered energy and internal conversions are not counted again. The park
model states the boundary through electricity roles and, for the other carriers, the meter
fields ``parent``, ``direction`` and ``counted`` (docs/park-model.md). :func:`boundary_rules`
turns them into one table of rules per entity (each enterprise, and the park as a whole):
each rule says that point P's quantity counts for entity E with sign +1 or −1, as flow F and
usage U. Because every quantity a supplier deducts is the same reading its customer adds,
the enterprises add up to the park exactly.

Flows
-----
``input``      bought from outside the entity, or received from another enterprise
``renewable``  self-generated renewable electricity (PV, wind, biomass): counted as energy,
               zero emission; the exported part is deducted through ``export``
``delivered``  passed on to another enterprise through that enterprise's sub-meter: deducted
``export``     supplied outside the park (grid export, ``direction: export``): deducted
``usage``      a re-classification row: a sub-meter inside the entity whose usage differs
               from production (生活用能, 原料用能) moves from production to that usage
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd

from lingtan.park.carriers import Carrier, ElectricityRole, Kind
from lingtan.park.model import Direction, Meter, Park, Point, Usage

PARK_ENTITY = "park"
RULE_COLUMNS = ["entity", "enterprise", "unit", "meter", "point", "carrier", "flow", "usage", "sign"]


class Flow(StrEnum):
    input = "input"
    renewable = "renewable"
    delivered = "delivered"
    export = "export"
    usage = "usage"


_ELECTRICITY_FLOW = {
    ElectricityRole.grid_import: Flow.input,
    ElectricityRole.consumption: Flow.input,
    ElectricityRole.grid_export: Flow.export,
    ElectricityRole.pv: Flow.renewable,
    ElectricityRole.wind: Flow.renewable,
    ElectricityRole.biomass: Flow.renewable,
    # not counted: the fuel (CHP, genset) or the recovered heat (余热余压发电) already is; storage is internal
    ElectricityRole.chp: None,
    ElectricityRole.standby_generation: None,
    ElectricityRole.waste_heat: None,
    ElectricityRole.storage_charge: None,
    ElectricityRole.storage_discharge: None,
}


def energy_points(meter: Meter) -> list[Point]:
    """The points whose energy is accounted: the counters, and for a role (or a non-electricity
    meter) without a counter, its rate point, whose energy is then integrated."""
    out = []
    for role in dict.fromkeys(p.role for p in meter.points):
        group = [p for p in meter.points if p.role == role]
        counters = [p for p in group if p.kind is Kind.counter]
        out += counters or [p for p in group if p.kind is Kind.rate][:1]
    return out


def point_flow(meter: Meter, point: Point) -> Flow | None:
    """How an energy point's energy crosses its own enterprise's boundary; None: never counted."""
    if not meter.counted or point not in energy_points(meter):
        return None
    if meter.carrier is Carrier.electricity:
        assert point.role is not None, f"electricity point {point.id} has no role"
        return _ELECTRICITY_FLOW[point.role]
    if meter.direction is Direction.export:
        return Flow.export
    if meter.direction is Direction.out:
        return None
    return Flow.input


def boundary_rules(park: Park) -> pd.DataFrame:
    """One row per (entity, point, flow, usage) that counts, with its sign; see the module doc."""
    owner: dict[str, tuple[str, str]] = {}  # meter -> (enterprise, unit)
    meters: dict[str, Meter] = {}
    for ent in park.enterprises:
        for unit in ent.units:
            for m in unit.meters:
                owner[m.id] = (ent.id, unit.id)
                meters[m.id] = m

    def ancestors(m: Meter) -> list[Meter]:
        out, seen = [], {m.id}
        while m.parent is not None and m.parent not in seen:
            m = meters[m.parent]
            seen.add(m.id)
            out.append(m)
        return out

    entities = {ent.id: {m.id for u in ent.units for m in u.meters} for ent in park.enterprises}
    entities[PARK_ENTITY] = set(meters)
    rows: list[tuple] = []
    for entity, members in entities.items():
        for mid, m in meters.items():
            ent_id, unit_id = owner[mid]
            ups = ancestors(m)
            for p in m.points:
                flow = point_flow(m, p)
                if flow is None:
                    continue
                base = (entity, ent_id, unit_id, mid, p.id, m.carrier.value)
                if mid in members:
                    if flow is Flow.export:
                        rows.append((*base, Flow.export.value, Usage.production.value, -1))
                        continue
                    inside = [a for a in ups if a.id in members]
                    if not inside:
                        rows.append((*base, flow.value, m.usage.value, +1))
                    elif m.usage is not Usage.production and inside[0].usage is Usage.production:
                        # already inside a production parent's reading: move it to its own usage line
                        rows.append((*base, Flow.usage.value, Usage.production.value, -1))
                        rows.append((*base, Flow.usage.value, m.usage.value, +1))
                elif flow in (Flow.input, Flow.renewable) and m.parent in members:
                    # leaves this entity through a sub-meter of another enterprise
                    parent_usage = meters[m.parent].usage.value
                    rows.append((*base, Flow.delivered.value, parent_usage, -1))
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def ledger(rules: pd.DataFrame, quantities: pd.DataFrame) -> pd.DataFrame:
    """Signed quantities per entity and period.

    Parameters
    ----------
    rules : pandas.DataFrame
        From :func:`boundary_rules`.
    quantities : pandas.DataFrame
        Columns ``period`` (period start, tz Asia/Shanghai), ``point`` and ``quantity``
        [canonical counter unit of the point's carrier]: consumption per period and point.

    Returns
    -------
    pandas.DataFrame
        The rules' columns plus ``period`` and ``quantity`` (signed) for every rule whose
        point has a quantity in a period.
    """
    merged = rules.merge(quantities[["period", "point", "quantity"]], on="point", how="inner")
    merged["quantity"] = merged["quantity"] * merged.pop("sign")
    return merged[["period", *[c for c in RULE_COLUMNS if c != "sign"], "quantity"]]
