"""Boundary rules on the demo park: who counts what, and the enterprises add up to the park."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lingtan
from lingtan.park import load_park
from lingtan.park.carriers import Kind
from lingtan_calc.core.accounting.boundary import PARK_ENTITY, boundary_rules, ledger
from lingtan_calc.core.accounting.factors import Factor, FactorLibrary
from lingtan_calc.core.accounting.results import account

DEMO = load_park(Path(lingtan.__file__).parent / "data" / "demo_park.yaml")
RULES = boundary_rules(DEMO)
COUNTERS = [p.id for e in DEMO.enterprises for u in e.units for m in u.meters for p in m.points
            if p.kind is Kind.counter]
DENSITY = Factor(id="demo.diesel.density", kind="density", subject="diesel", value=0.835, unit="kg/L",
                 valid_from="2020-01-01", source={"document": "test", "edition": "2026"}, confidence="test",
                 override=True, author="test", reason="diesel metered in litres")
LIB = FactorLibrary.shipped().with_overrides([DENSITY])


def rules_for(entity: str, meter: str) -> list[tuple[str, str, int]]:
    r = RULES[(RULES["entity"] == entity) & (RULES["meter"] == meter)]
    return sorted(zip(r["flow"], r["usage"], r["sign"], strict=True))


def test_demo_rules_by_hand():
    # the park counts the grid meter (import +, export −) and never a tenant's sub-meter
    assert rules_for(PARK_ENTITY, "m-grid-main") == [("export", "production", -1), ("input", "production", 1)]
    assert rules_for(PARK_ENTITY, "m-e01-smt-l1") == []
    assert rules_for(PARK_ENTITY, "m-pv-01") == [("renewable", "production", 1)]
    # the energy-service company passes a tenant's electricity and gas on: deducted
    assert rules_for("e00", "m-e01-smt-l1") == [("delivered", "production", -1)]
    assert rules_for("e00", "m-e03-bakery-gas") == [("delivered", "production", -1)]
    assert rules_for("e01", "m-e01-smt-l1") == [("input", "production", 1)]
    # the dormitory is 生活用能 for e01; inside the park it moves from production to non-production
    assert rules_for("e01", "m-e01-dorm") == [("input", "non_production", 1)]
    assert rules_for(PARK_ENTITY, "m-e01-dorm") == [("usage", "non_production", 1), ("usage", "production", -1)]
    # produced steam is not an input; the boiler's gas is counted once, through the gas main
    assert rules_for("e00", "m-boiler1-steam") == []
    assert rules_for("e00", "m-boiler1-gas") == []
    assert rules_for("e00", "m-gas-main") == [("input", "production", 1)]
    # CHP and waste-heat electricity, storage and the biomass plant's fuel are not counted
    for m in ("m-chp-gen", "m-whp-gen", "m-bess", "m-bio-fuel", "m-genset"):
        assert rules_for(PARK_ENTITY, m) == [] and rules_for("e00", m) == [], m
    # feedstock gas of e02: its own line
    assert rules_for("e02", "m-e02-feed-gas") == [("input", "feedstock", 1)]


@given(st.integers(0, 2**31))
@settings(max_examples=25, deadline=None)
def test_enterprises_add_up_to_the_park(seed):
    rng = np.random.default_rng(seed)
    period = pd.Timestamp("2026-06-01", tz="Asia/Shanghai")
    quantities = pd.DataFrame({"period": period, "point": COUNTERS,
                               "quantity": rng.uniform(0, 1000, len(COUNTERS))})
    acc = account(ledger(RULES, quantities), LIB)
    t = acc.totals.set_index("entity")
    for col in ("comprehensive_tce", "feedstock_tce", "non_production_tce", "scope1_tco2", "scope2_tco2",
                "total_tco2", "total_market_tco2"):
        assert t.drop(index=PARK_ENTITY)[col].sum() == pytest.approx(t.at[PARK_ENTITY, col], rel=1e-9), col
