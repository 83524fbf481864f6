"""The balance and efficiency endpoints against a live InfluxDB, on the example park with a topology.

Per hour the example park buys 1,000 kWh and 0.5 t of steam, makes 200 kWh of PV, exports 50 kWh
and feeds enterprise B 800 kWh (tests/calc/test_engine_influx.py). The topology below sends the
grid and PV through one transformer to the export and to B; A's own use has no feeder meter, so
the transformer's residual is 1,000 + 200 − 50 − 800 = 350 kWh an hour, 29 % of what enters it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lingtan.park.loader import parse_park
from tests.calc.parks import PARK_AB
from tests.calc.test_api import computed

TOPOLOGY = """
topology:
  nodes:
    - {id: grid, name: 电网, type: supply, kind: grid}
    - {id: steam-main, name: 蒸汽管网, type: supply, kind: steam_main}
    - {id: pv, name: 光伏, type: supply, kind: onsite_generation}
    - {id: tx, name: 主变, type: conversion, kind: transformer}
    - {id: n-a, name: 站, type: end_use, kind: unit, unit: a-station}
    - {id: n-b, name: 产线, type: end_use, kind: unit, unit: b-line}
    - {id: exp, name: 上网, type: end_use, kind: export}
  edges:
    - {from: grid, to: tx, carrier: electricity, meter: m-grid, point: m-grid.import}
    - {from: pv, to: tx, carrier: electricity, meter: m-pv}
    - {from: tx, to: exp, carrier: electricity, meter: m-grid, point: m-grid.export}
    - {from: tx, to: n-b, carrier: electricity, meter: m-b-elec}
    - {from: steam-main, to: n-a, carrier: steam, meter: m-steam}
"""
DAY = "start=2026-03-01&end=2026-03-02"


@pytest.fixture
def park():
    return parse_park(PARK_AB + TOPOLOGY, Path("ex2-topology.yaml"))


def test_balance_table_of_the_park(app, client):
    computed(app)
    body = client.get(f"/api/v1/analysis/balance?entity=park&{DAY}").json
    rows = {(r["row"], r["node"], r["carrier"]): r for r in body["rows"]}
    assert rows[("purchase", "grid", "electricity")]["quantity"] == pytest.approx(24_000.0)
    assert rows[("purchase", "grid", "electricity")]["tce"] == pytest.approx(24_000 * 0.1229e-3)
    assert rows[("own_generation", "pv", "electricity")]["quantity"] == pytest.approx(4_800.0)
    assert rows[("export", "exp", "electricity")]["quantity"] == pytest.approx(1_200.0)
    assert rows[("end_use", "n-b", "electricity")]["quantity"] == pytest.approx(19_200.0)
    assert rows[("distribution", "tx", "electricity")]["quantity"] == pytest.approx(8_400.0)
    assert rows[("end_use", "n-a", "steam")]["quantity"] == pytest.approx(12.0)
    assert body["units"]["quantity"] == {"electricity": "kWh", "steam": "t"}
    assert all(abs(c["imbalance"]) < 1e-6 for c in body["closure"])
    assert all(c["ok"] for c in body["boundary_check"])  # the topology's purchases are the boundary meters
    (warning,) = body["warnings"]
    assert warning.startswith("tx (主变): the residual 8400 electricity is more than 5% of its throughput")


def test_efficiency_and_load(app, client):
    computed(app)
    body = client.get(f"/api/v1/analysis/efficiency?entity=park&{DAY}").json
    (tx,) = body["conversion"]
    assert tx["efficiency"] == pytest.approx(20_400 / 28_800)
    assert tx["loss"] == pytest.approx(8_400.0)
    load = {r["unit_id"]: r for r in body["load"]}
    # B's line draws a flat 800 kW: load factor 1, the base load is all of it
    assert load["b-line"]["load_factor"] == pytest.approx(1.0)
    assert load["b-line"]["baseload_share"] == pytest.approx(1.0)
    assert client.get(f"/api/v1/analysis/efficiency?carrier=plasma&{DAY}").json["error"]["field"] == "carrier"
