"""Park-wide consistency checks that a single pydantic model cannot see.

Each check yields ``(location, message)``; the location is the path of the offending
field in the YAML document, so the loader can name its line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lingtan.park.carriers import CARRIER_UNITS, Carrier, Kind
from lingtan.park.model import PROTOCOLS, Park

Loc = tuple[Any, ...]
Errors = list[tuple[Loc, str]]


def _unique(items: list[Any], where: Loc, what: str) -> Iterator[tuple[Loc, str]]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.id in seen:
            yield (*where, i, "id"), f"duplicate {what} id {item.id!r} (first at index {seen[item.id]})"
        else:
            seen[item.id] = i


@dataclass
class _Seen:
    """Ids and protocol bindings met while walking the enterprises, for the checks that follow."""

    unit_ids: dict[str, Loc] = field(default_factory=dict)
    meter_ids: dict[str, Loc] = field(default_factory=dict)
    point_ids: dict[str, Loc] = field(default_factory=dict)
    meters: dict[str, Any] = field(default_factory=dict)
    # the points of each protocol with their device and location, for the protocol's own checks
    bound: dict[str, list[tuple[Any, Any, Loc]]] = field(default_factory=dict)


def check_park(park: Park) -> list[tuple[Loc, str]]:
    """Return every cross-reference error in ``park`` (empty when consistent)."""
    errors: list[tuple[Loc, str]] = []
    errors += _unique(park.devices, ("devices",), "device")
    errors += _unique(park.enterprises, ("enterprises",), "enterprise")
    devices = {d.id: d for d in park.devices}
    seen = _Seen()
    errors += _enterprise_units(park, devices, seen)
    for spec in PROTOCOLS:
        if spec.check_bindings is not None:
            errors += spec.check_bindings(seen.bound.get(spec.name, []))
    errors += _meter_parents(seen.meters, seen.meter_ids)
    nodes, node_errors = _topology_nodes(park, seen.unit_ids)
    errors += node_errors
    errors += _topology_edges(park, nodes, seen.meters)
    return errors


def _enterprise_units(park: Park, devices: dict[str, Any], seen: _Seen) -> Errors:
    """Production units, meters and points: unique ids, known devices, then each point's own checks."""
    errors: Errors = []
    for ei, ent in enumerate(park.enterprises):
        for ui, unit in enumerate(ent.units):
            uloc = ("enterprises", ei, "units", ui)
            if unit.id in seen.unit_ids:
                errors.append(((*uloc, "id"), f"duplicate production unit id {unit.id!r}"))
            seen.unit_ids[unit.id] = uloc
            for mi, meter in enumerate(unit.meters):
                mloc = (*uloc, "meters", mi)
                if meter.id in seen.meter_ids:
                    errors.append(((*mloc, "id"), f"duplicate meter id {meter.id!r}"))
                seen.meter_ids[meter.id] = mloc
                seen.meters[meter.id] = meter
                device = devices.get(meter.device)
                if device is None:
                    errors.append(((*mloc, "device"), f"meter {meter.id!r} names unknown device {meter.device!r}"))
                for pi, point in enumerate(meter.points):
                    ploc = (*mloc, "points", pi)
                    if point.id in seen.point_ids:
                        errors.append(((*ploc, "id"), f"duplicate point id {point.id!r}"))
                    seen.point_ids[point.id] = ploc
                    errors += _point_unit_role_rollover(meter, point, ploc)
                    if device is not None:
                        errors += _point_binding(point, ploc, device, seen)
    return errors


def _point_unit_role_rollover(meter: Any, point: Any, ploc: Loc) -> Errors:
    """A point's unit suits its carrier and kind, its role suits the carrier, its rollover suits kind and register."""
    errors: Errors = []
    units = CARRIER_UNITS[meter.carrier]
    try:
        units.factor(point.kind, point.unit)
    except KeyError:
        errors.append((
            (*ploc, "unit"),
            f"unit {point.unit!r} is not accepted for a {meter.carrier.value} {point.kind.value}; "
            f"use one of {units.accepted(point.kind)}",
        ))
    if meter.carrier is Carrier.electricity and point.role is None:
        errors.append(((*ploc, "role"), f"electricity point {point.id!r} must state its role"))
    if meter.carrier is not Carrier.electricity and point.role is not None:
        errors.append((
            (*ploc, "role"),
            f"point {point.id!r} has role {point.role.value!r}, but a role is only for "
            f"electricity points, not {meter.carrier.value}",
        ))
    if point.rollover is not None and point.kind is not Kind.counter:
        errors.append(((*ploc, "rollover"), "rollover is only meaningful for counters"))
    width = point.binding.integer_width()
    if point.rollover is not None and width is not None and point.rollover > 2 ** width[0]:
        errors.append(((*ploc, "rollover"), f"rollover {point.rollover:g} exceeds what "
                       f"{width[1]} holds (2^{width[0]})"))
    return errors


def _point_binding(point: Any, ploc: Loc, device: Any, seen: _Seen) -> Errors:
    """The point's protocol is its device's; the point is kept for its protocol's own checks."""
    if point.protocol is not device.protocol:
        return [(
            (*ploc, point.protocol.value),
            f"point {point.id!r} has a {point.protocol.value} binding but its meter's device "
            f"{device.id!r} speaks {device.protocol.value}",
        )]
    seen.bound.setdefault(point.protocol.value, []).append((device, point, ploc))
    return []


def _meter_parents(meters: dict[str, Any], meter_ids: dict[str, Loc]) -> list[tuple[Loc, str]]:
    """Sub-meter links: the parent exists, has the same carrier, and there is no cycle."""
    errors: list[tuple[Loc, str]] = []
    for mid, meter in meters.items():
        loc = meter_ids[mid]
        if meter.carrier is Carrier.electricity and meter.direction.value != "in":
            errors.append(((*loc, "direction"), f"electricity meter {mid!r} states its direction through the "
                           f"roles of its points, not with direction {meter.direction.value!r}"))
        if meter.parent is None:
            continue
        parent = meters.get(meter.parent)
        if parent is None:
            errors.append(((*loc, "parent"), f"meter {mid!r} names unknown parent meter {meter.parent!r}"))
            continue
        if parent.carrier is not meter.carrier:
            errors.append(((*loc, "parent"), f"meter {mid!r} ({meter.carrier.value}) cannot be a sub-meter of "
                           f"{parent.id!r} ({parent.carrier.value})"))
        seen = {mid}
        up = parent
        while up is not None:
            if up.id in seen:
                errors.append(((*loc, "parent"), f"meter {mid!r}: the parent chain loops back through {up.id!r}"))
                break
            seen.add(up.id)
            up = meters.get(up.parent) if up.parent else None
    return errors


def _topology_nodes(park: Park, unit_ids: dict[str, Loc]) -> tuple[dict[str, int], Errors]:
    """Topology node ids are unique and name known production units; returns the node index by id."""
    errors: Errors = []
    nodes: dict[str, int] = {}
    for ni, node in enumerate(park.topology.nodes):
        if node.id in nodes:
            errors.append((("topology", "nodes", ni, "id"), f"duplicate topology node id {node.id!r}"))
        nodes[node.id] = ni
        if node.unit is not None and node.unit not in unit_ids:
            errors.append((("topology", "nodes", ni, "unit"), f"node {node.id!r} names unknown production unit {node.unit!r}"))
    return nodes, errors


def _topology_edges(park: Park, nodes: dict[str, int], meters: dict[str, Any]) -> Errors:
    """Flow edges join known nodes and are measured by a known meter of the same carrier, through one counter."""
    errors: Errors = []
    for ei, edge in enumerate(park.topology.edges):
        eloc = ("topology", "edges", ei)
        for end, field_name in ((edge.source, "from"), (edge.target, "to")):
            if end not in nodes:
                errors.append(((*eloc, field_name), f"edge {edge.source}->{edge.target} points at unknown node {end!r}"))
        meter = meters.get(edge.meter)
        if meter is None:
            errors.append(((*eloc, "meter"), f"edge {edge.source}->{edge.target} names unknown meter {edge.meter!r}"))
            continue
        if meter.carrier is not edge.carrier:
            errors.append((
                (*eloc, "carrier"),
                f"edge carrier {edge.carrier.value!r} differs from meter {meter.id!r} carrier {meter.carrier.value!r}",
            ))
        counters = [p.id for p in meter.points if p.kind is Kind.counter]
        if edge.point is not None:
            if edge.point not in {p.id for p in meter.points}:
                errors.append(((*eloc, "point"), f"meter {meter.id!r} has no point {edge.point!r}"))
        elif len(counters) != 1:
            errors.append((
                (*eloc, "point"),
                f"meter {meter.id!r} has {len(counters)} counters {counters}; name the one measuring this edge in 'point'",
            ))
    return errors
