"""The demo park (lingtan/data/demo_park.yaml) meets its specification: industries,
on-site generation, grid import/export, boilers and CHP, purchased steam, diesel, storage,
points per protocol, and a topology whose every edge resolves."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lingtan
from lingtan.park import Park, load_park
from lingtan.park.carriers import Carrier, ElectricityRole, Kind
from lingtan.park.index import iter_points
from lingtan.park.model import FlowEdge, Meter, credit_code_check_char
from lingtan_tools.simulate.models import ParkRates

DEMO_PARK = Path(lingtan.__file__).parent / "data" / "demo_park.yaml"

# --------------------------------------------------------------------------- demo park


@pytest.fixture(scope="module")
def demo() -> Park:
    return load_park(DEMO_PARK)


def _roles(park: Park) -> Counter[ElectricityRole]:
    return Counter(ref.point.role for ref in iter_points(park) if ref.point.role is not None)


def test_demo_park_loads(demo: Park) -> None:
    assert demo.park.timezone == "Asia/Shanghai"
    assert {d.protocol.value for d in demo.devices} == {"opcua", "modbus", "mqtt"}


def test_demo_enterprises_in_different_industries(demo: Park) -> None:
    codes = [e.industry_code for e in demo.enterprises]
    assert len(codes) >= 3
    assert len(set(codes)) == len(codes)
    # different industries, not just different classes of one industry: >= 3 distinct divisions (门类+大类)
    assert len({code[:3] for code in codes}) >= 3
    for ent in demo.enterprises:
        assert credit_code_check_char(ent.credit_code[:17]) == ent.credit_code[17]


def test_demo_onsite_generation_grid_and_storage_roles(demo: Park) -> None:
    roles = _roles(demo)
    for role in (
        ElectricityRole.pv,
        ElectricityRole.wind,
        ElectricityRole.biomass,
        ElectricityRole.waste_heat,
        ElectricityRole.grid_import,
        ElectricityRole.grid_export,
        ElectricityRole.storage_charge,
        ElectricityRole.storage_discharge,
        ElectricityRole.standby_generation,
        ElectricityRole.chp,
    ):
        assert roles[role] >= 1, f"no point with role {role.value}"
    # each of these has a cumulative counter, not only a rate
    counters = {ref.point.role for ref in iter_points(demo) if ref.point.kind is Kind.counter}
    assert {ElectricityRole.pv, ElectricityRole.wind, ElectricityRole.biomass, ElectricityRole.waste_heat,
            ElectricityRole.grid_import, ElectricityRole.grid_export, ElectricityRole.storage_charge,
            ElectricityRole.storage_discharge} <= counters


def _meters(park: Park) -> dict[str, Meter]:
    return {m.id: m for e in park.enterprises for u in e.units for m in u.meters}


def _in_edges(park: Park, node: str) -> list[FlowEdge]:
    return [e for e in park.topology.edges if e.target == node]


def _out_edges(park: Park, node: str) -> list[FlowEdge]:
    return [e for e in park.topology.edges if e.source == node]


def test_demo_gas_boilers_and_chp(demo: Park) -> None:
    meters = _meters(demo)
    kinds = {n.id: n.kind for n in demo.topology.nodes}
    gas_boilers = [
        node for node, kind in kinds.items()
        if kind == "boiler" and any(e.carrier is Carrier.natural_gas for e in _in_edges(demo, node))
    ]
    assert len(gas_boilers) >= 2
    for node in gas_boilers:
        assert any(e.carrier is Carrier.steam for e in _out_edges(demo, node)), node
    gas_chp = [
        node for node, kind in kinds.items()
        if kind == "chp" and any(e.carrier is Carrier.natural_gas for e in _in_edges(demo, node))
    ]
    assert gas_chp
    for node in gas_chp:
        out = {e.carrier for e in _out_edges(demo, node)}
        assert Carrier.electricity in out and Carrier.heat in out, node
        # its electricity is metered by a point with role chp
        elec = [e for e in _out_edges(demo, node) if e.carrier is Carrier.electricity]
        assert any(p.role is ElectricityRole.chp for e in elec for p in meters[e.meter].points)
    # the gas into boilers and CHP is metered by natural_gas meters
    for node in gas_boilers + gas_chp:
        for edge in _in_edges(demo, node):
            assert meters[edge.meter].carrier is Carrier.natural_gas


def test_demo_purchased_steam(demo: Park) -> None:
    meters = _meters(demo)
    mains = [n.id for n in demo.topology.nodes if n.kind == "steam_main"]
    assert mains
    edges = [e for m in mains for e in _out_edges(demo, m)]
    assert edges and all(e.carrier is Carrier.steam for e in edges)
    assert all(meters[e.meter].carrier is Carrier.steam for e in edges)


def test_demo_diesel_forklifts_and_standby_generation(demo: Park) -> None:
    meters = _meters(demo)
    diesel = [m for m in meters.values() if m.carrier is Carrier.diesel]
    assert any("叉车" in m.name for m in diesel), "no forklift (叉车) diesel meter"
    # standby generation: a diesel edge into a node whose electricity output has role standby_generation
    standby = False
    for edge in demo.topology.edges:
        if edge.carrier is not Carrier.diesel:
            continue
        for out in _out_edges(demo, edge.target):
            if out.carrier is Carrier.electricity and any(
                p.role is ElectricityRole.standby_generation for p in meters[out.meter].points
            ):
                standby = True
    assert standby


def test_demo_battery_store(demo: Park) -> None:
    meters = _meters(demo)
    stores = [n.id for n in demo.topology.nodes if n.kind == "storage"]
    assert stores
    for node in stores:
        into = [e for e in _in_edges(demo, node) if e.carrier is Carrier.electricity]
        out = [e for e in _out_edges(demo, node) if e.carrier is Carrier.electricity]
        assert into and out
        point_role = {p.id: p.role for m in meters.values() for p in m.points}
        assert {point_role[e.point] for e in into if e.point} == {ElectricityRole.storage_charge}
        assert {point_role[e.point] for e in out if e.point} == {ElectricityRole.storage_discharge}


def test_demo_point_counts(demo: Park) -> None:
    refs = iter_points(demo)
    assert len(refs) >= 200
    by_protocol = Counter(ref.protocol.value for ref in refs)
    assert set(by_protocol) == {"opcua", "modbus", "mqtt"}
    assert min(by_protocol.values()) >= 50, by_protocol
    # every point belongs to a device speaking its protocol
    devices = {d.id: d for d in demo.devices}
    assert all(devices[ref.device_id].protocol is ref.protocol for ref in refs)
    # every declared unit converts to the canonical one
    for ref in refs:
        assert ref.to_canonical > 0


def test_demo_topology_edges_resolve(demo: Park) -> None:
    nodes = {n.id for n in demo.topology.nodes}
    meters = _meters(demo)
    units = {u.id for e in demo.enterprises for u in e.units}
    assert demo.topology.edges
    for edge in demo.topology.edges:
        assert edge.source in nodes and edge.target in nodes, edge
        meter = meters[edge.meter]
        assert meter.carrier is edge.carrier, edge
        counters = [p for p in meter.points if p.kind is Kind.counter]
        if edge.point is None:
            assert len(counters) == 1, edge
        else:
            assert edge.point in {p.id for p in counters}, edge
    for node in demo.topology.nodes:
        if node.kind == "unit":
            assert node.unit in units


def test_demo_sub_meters_and_directions(demo: Park) -> None:
    """Every tenant's electricity, gas, steam and water is a sub-meter of a park supply meter."""
    meters = {m.id: (e.id, m) for e in demo.enterprises for u in e.units for m in u.meters}
    for mid, (ent, m) in meters.items():
        if ent == "e00" or m.carrier in (Carrier.diesel, Carrier.cooling, Carrier.heat):
            continue
        if m.carrier is Carrier.electricity and {p.role for p in m.points} != {ElectricityRole.consumption}:
            continue
        if mid == "m-e02-whr":  # recovered heat, produced inside e02
            assert m.direction.value == "out"
            continue
        assert m.parent is not None, mid
        assert meters[m.parent][0] == "e00", (mid, m.parent)
    assert meters["m-bio-fuel"][1].counted is False
    assert {mid for mid, (_, m) in meters.items() if m.direction.value == "out"} == {
        "m-boiler1-steam", "m-boiler2-steam", "m-chp-heat", "m-chiller-cool", "m-e02-whr"}


def test_simulated_parent_reads_its_own_use_plus_its_sub_meters(demo: Park) -> None:
    rates_model = ParkRates(demo, seed=3, step_s=60.0)
    rates = rates_model.next_chunk(pd.date_range("2026-06-03T10:00", periods=30, freq="min", tz="Asia/Shanghai"))
    checked = 0
    for parent, kids in rates_model.children.items():
        if parent == "m-grid-main":
            continue  # the grid meter reads the park's net exchange, not a sum
        total = sum(rates[(k.id, "main")] for k in kids)
        own = rates[(parent, "main")] - total
        assert np.all(own > 0), parent  # its own use (losses, blow-down, unmetered), never negative
        checked += 1
    assert checked == 7  # tx1, tx2, gas main, water main, purchased steam, boiler 1 and 2 steam
