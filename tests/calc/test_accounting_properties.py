"""Properties of the accounting: parts add up, units do not matter, nothing goes negative."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lingtan_calc.core.accounting.boundary import PARK_ENTITY
from lingtan_calc.core.accounting.factors import Factor, FactorLibrary
from lingtan_calc.core.accounting.inventory import evaluate, parse_inventory
from lingtan_calc.core.accounting.results import account

LIB = FactorLibrary.shipped()
DENSITY = Factor(id="test.diesel.density", kind="density", subject="diesel", value=0.835, unit="kg/L",
                 valid_from="2020-01-01", source={"document": "test supplier note", "edition": "2026"},
                 confidence="test value", override=True, author="test", reason="diesel metered in litres")

#: (carrier, canonical unit, other unit, canonical units per other unit)
UNITS = [
    ("electricity", "kWh", "MWh", 1000.0),
    ("natural_gas", "m3", "10^4 Nm3", 10_000.0),
    ("steam", "t", "kg", 0.001),
    ("heat", "GJ", "MJ", 0.001),
    ("diesel", "L", "m3", 1000.0),
    ("coal", "t", "kg", 0.001),
    ("water", "m3", "L", 0.001),
]

line = st.tuples(
    st.integers(0, len(UNITS) - 1),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from(["input", "input", "delivered", "export"]),
    st.sampled_from(["production", "production", "non_production", "feedstock"]),
)
inventory = st.lists(st.lists(line, min_size=1, max_size=6), min_size=1, max_size=4)


def _inventory(enterprises, other_units: bool) -> dict:
    ents = []
    for i, lines in enumerate(enterprises):
        energy = []
        for k, qty, flow, usage in lines:
            carrier, unit, other, per_other = UNITS[k]
            if flow == "export" and carrier == "water":
                flow = "input"
            q, u = (qty / per_other, other) if other_units else (qty, unit)
            energy.append({"carrier": carrier, "quantity": q, "unit": u, "flow": flow, "usage": usage})
        ents.append({"id": f"e{i}", "energy": energy, "production": {"output_value": 100.0 + i}})
    return {"period_start": "2026-01-01", "period_end": "2027-01-01", "enterprises": ents,
            "factor_overrides": [DENSITY.model_dump(mode="json")]}


@given(inventory)
@settings(max_examples=60, deadline=None)
def test_enterprises_add_up_to_the_park_and_carriers_to_the_total(enterprises):
    acc = evaluate(parse_inventory(_inventory(enterprises, other_units=False)), LIB)
    t = acc.totals.set_index("entity")
    cols = ["comprehensive_tce", "feedstock_tce", "non_production_tce", "scope1_tco2", "scope2_tco2", "total_tco2"]
    ents = t.drop(index=PARK_ENTITY)
    for col in cols:
        assert ents[col].sum() == pytest.approx(t.at[PARK_ENTITY, col], rel=1e-9, abs=1e-6), col
    by_carrier = acc.by_carrier.groupby("entity")["tce"].sum()
    for entity in t.index:
        assert by_carrier.get(entity, 0.0) == pytest.approx(t.at[entity, "comprehensive_tce"], rel=1e-9, abs=1e-6)
    # every emission row traces to a factor
    assert (acc.emissions["emission_factors"].str.len() > 0).all()


@given(inventory)
@settings(max_examples=60, deadline=None)
def test_the_unit_of_an_input_does_not_change_the_results(enterprises):
    a = evaluate(parse_inventory(_inventory(enterprises, other_units=False)), LIB).totals.set_index("entity")
    b = evaluate(parse_inventory(_inventory(enterprises, other_units=True)), LIB).totals.set_index("entity")
    pd.testing.assert_frame_equal(a.sort_index(), b.sort_index(), rtol=1e-9, atol=1e-6)


@given(st.lists(st.floats(min_value=0, max_value=5e4), min_size=24, max_size=24),
       st.lists(st.floats(min_value=0, max_value=5e4), min_size=24, max_size=24))
@settings(max_examples=40, deadline=None)
def test_hours_add_up_to_the_day(a_kwh, b_m3):
    """The same ledger per hour and per day: daily totals are the sums of the hourly ones."""
    hours = pd.date_range("2026-03-01", periods=24, freq="h", tz="Asia/Shanghai")
    rows = []
    for h, ea, gb in zip(hours, a_kwh, b_m3, strict=True):
        for entity in ("e1", PARK_ENTITY):
            rows.append((h, entity, "e1", "u1", "m1", "m1.t", "electricity", "input", "production", ea))
        for entity in ("e2", PARK_ENTITY):
            rows.append((h, entity, "e2", "u2", "m2", "m2.t", "natural_gas", "input", "production", gb))
    cols = ["period", "entity", "enterprise", "unit", "meter", "point", "carrier", "flow", "usage", "quantity"]
    hourly = pd.DataFrame(rows, columns=cols)
    daily = hourly.assign(period=hours[0]).groupby(cols[:-1], as_index=False)["quantity"].sum()
    h = account(hourly, LIB).totals.groupby("entity")[["comprehensive_tce", "total_tco2"]].sum()
    d = account(daily, LIB).totals.set_index("entity")[["comprehensive_tce", "total_tco2"]]
    pd.testing.assert_frame_equal(h.sort_index(), d.sort_index(), rtol=1e-9, atol=1e-9)


def test_missing_density_names_the_factor_and_date():
    inv = _inventory([[(4, 100.0, "input", "production")]], other_units=False)
    inv["factor_overrides"] = []
    without_density = FactorLibrary([f for f in LIB if f.kind.value != "density"])
    with pytest.raises(LookupError, match=r"density for 'diesel'.*2026-01-01.*park override"):
        evaluate(parse_inventory(inv), without_density)


def test_bad_unit_is_refused_with_field_and_value():
    inv = _inventory([[(0, 100.0, "input", "production")]], other_units=False)
    inv["enterprises"][0]["energy"][0]["unit"] = "m3"
    with pytest.raises(ValueError, match=r"enterprises\.0\.energy\.0.*'m3' cannot be converted to kWh"):
        parse_inventory(inv, "inv.json")
