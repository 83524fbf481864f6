"""Energy structure, key consumers, period comparison and trend against hand-computed numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lingtan_calc.core.analysis.structure import (
    compare,
    output_normalised,
    pareto,
    structure,
    trend,
)

# one entity's energy rows: 10,000 kWh bought (1.229 tce at 0.1229 kgce/kWh), 1,000 m3 of gas
# (1.2143 tce) of which 200 m3 passed on to a neighbour, 2,000 kWh exported
ROWS = pd.DataFrame([
    ("e1", "u1", "m-grid", "electricity", "input", "production", 10_000.0, 1.229),
    ("e1", "u1", "m-grid", "electricity", "export", "production", -2_000.0, -0.2458),
    ("e1", "u2", "m-gas", "natural_gas", "input", "production", 1_000.0, 1.2143),
    ("e1", "u2", "m-gas-sub", "natural_gas", "delivered", "production", -200.0, -0.24286),
    ("e1", "u2", "m-canteen", "natural_gas", "usage", "non_production", 50.0, 0.060715),
], columns=["enterprise", "unit_id", "meter", "carrier", "flow", "usage", "quantity", "tce"])


def test_structure_by_carrier() -> None:
    out = structure(ROWS, "carrier").set_index("carrier")
    assert out.loc["electricity", "quantity"] == pytest.approx(8_000.0)
    assert out.loc["electricity", "tce"] == pytest.approx(0.9832)
    assert out.loc["natural_gas", "quantity"] == pytest.approx(850.0)
    total = 0.9832 + 1.2143 - 0.24286 + 0.060715
    assert out.loc["natural_gas", "share"] == pytest.approx((1.2143 - 0.24286 + 0.060715) / total)
    assert out["share"].sum() == pytest.approx(1.0)
    assert list(out.index) == ["natural_gas", "electricity"]  # largest first


def test_structure_by_unit_and_usage() -> None:
    units = structure(ROWS, "unit").set_index("unit_id")
    assert units.loc["u1", "tce"] == pytest.approx(0.9832)
    assert "quantity" not in units.columns  # a unit's carriers cannot be added in physical units
    usage = structure(ROWS, "usage").set_index("usage")
    assert usage.loc["non_production", "tce"] == pytest.approx(0.060715)
    with pytest.raises(ValueError, match="by 'colour' is not one of carrier, enterprise, unit"):
        structure(ROWS, "colour")


def test_pareto_flags_the_top_80_percent() -> None:
    values = pd.Series({"a": 50.0, "b": 25.0, "c": 10.0, "d": 10.0, "e": 5.0, "supplier": -3.0})
    out = pareto(values)
    assert list(out.index) == ["a", "b", "c", "d", "e", "supplier"]
    assert out["cumulative_share"].tolist()[:5] == pytest.approx([0.5, 0.75, 0.85, 0.95, 1.0])
    # a and b reach 75 %; c crosses 80 % and is included; d starts at 85 % and is not
    assert out["key"].tolist() == [True, True, True, False, False, False]
    assert out.loc["supplier", "share"] == 0.0


def test_compare_two_periods() -> None:
    out = compare(pd.Series({"electricity": 100.0, "steam": 0.0, "gas": 40.0}),
                  pd.Series({"electricity": 110.0, "steam": 5.0, "water": 2.0}))
    assert out.loc["electricity", "change"] == pytest.approx(10.0)
    assert out.loc["electricity", "change_ratio"] == pytest.approx(0.10)
    assert out.loc["gas", "current"] == 0.0 and out.loc["gas", "change_ratio"] == pytest.approx(-1.0)
    assert math.isnan(out.loc["steam", "change_ratio"])  # from nothing: no ratio
    assert out.loc["water", "base"] == 0.0


def test_output_and_weather_normalisation() -> None:
    # base: 100 tce for 50 t; current: 132 tce for 60 t -> 2.2 tce/t; at 50 t: 110 tce, +10 %
    out = output_normalised(100.0, 50.0, 132.0, 60.0)
    assert out["specific_base"] == pytest.approx(2.0)
    assert out["specific_current"] == pytest.approx(2.2)
    assert out["normalised_current"] == pytest.approx(110.0)
    assert out["normalised_change_ratio"] == pytest.approx(0.10)
    with pytest.raises(ValueError, match="output must be > 0"):
        output_normalised(100.0, 0.0, 132.0, 60.0)


def test_trend_slope() -> None:
    months = pd.date_range("2026-01-01", periods=12, freq="MS", tz="Asia/Shanghai")
    out = trend(pd.Series([100.0 + 2.0 * i for i in range(12)], index=months))
    assert out["slope"] == pytest.approx(2.0)
    assert out["slope_ratio"] == pytest.approx(2.0 / 111.0)
    assert out["r2"] == pytest.approx(1.0)
    gap = pd.Series([100.0, None, 104.0, 106.0], index=months[:4])  # a missing month is left out, not 0
    assert trend(gap)["slope"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least 3 months"):
        trend(gap.iloc[:2])
