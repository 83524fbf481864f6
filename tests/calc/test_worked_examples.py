"""Worked examples from the standards, computed by hand, through the offline and metered paths.

Every coefficient used is cited in the example files (tests/calc/examples/*.yaml) and in the
factor library entry the result lists.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lingtan.park.loader import parse_park
from lingtan_calc.core.accounting.boundary import PARK_ENTITY, boundary_rules, ledger
from lingtan_calc.core.accounting.consumption import counter_deltas, spread
from lingtan_calc.core.accounting.factors import FactorLibrary
from lingtan_calc.core.accounting.inventory import evaluate, load_inventory
from lingtan_calc.core.accounting.results import account
from tests.calc.parks import PARK_AB

EXAMPLES = Path(__file__).parent / "examples"
STEAM_GJ_PER_T = (2777.1 - 83.74) / 1000  # IAPWS-IF97 h'' at 1.0 MPa minus the NDRC feed-water term


@pytest.fixture(scope="module")
def lib() -> FactorLibrary:
    return FactorLibrary.shipped()


def totals(accounts, entity: str) -> pd.Series:
    t = accounts.totals
    return t[t["entity"] == entity].iloc[0]


def test_single_fuel_natural_gas(lib):
    acc = evaluate(load_inventory(EXAMPLES / "single_fuel.yaml"), lib)
    t = totals(acc, "glassworks")
    assert t["comprehensive_tce"] == pytest.approx(1_000_000 * 1.2143 / 1000)  # 1 214.3 tce
    ad_gj = 100 * 389.31
    assert t["scope1_tco2"] == pytest.approx(ad_gj * 0.0153 * 0.99 * 44 / 12)  # 2 162.188809
    assert t["scope1_tco2"] == pytest.approx(2162.188809, abs=1e-6)
    assert t["scope2_tco2"] == 0
    assert acc.factors_used() == ["gbt2589.natural_gas", "ndrc.natural_gas.cc", "ndrc.natural_gas.ncv",
                                  "ndrc.natural_gas.of"]
    # 2.1622 kgCO₂/m³ is the identity the reference quotes for this NCV
    assert t["scope1_tco2"] / 1_000_000 * 1000 == pytest.approx(2.1622, abs=5e-5)


def _example2_hand() -> dict[str, dict[str, float]]:
    kgce_kwh, kgce_gj, ef_grid, ef_heat, residual = 0.1229, 34.12, 0.5500, 0.11, 0.6096
    a_kwh = 10_000_000 + 2_000_000 - 500_000 - 8_000_000
    a_steam_t, b_steam_t = 5000 - 3000, 3000
    a_tce = (a_kwh * kgce_kwh + a_steam_t * STEAM_GJ_PER_T * kgce_gj) / 1000
    b_tce = (8_000_000 * kgce_kwh + b_steam_t * STEAM_GJ_PER_T * kgce_gj) / 1000
    a_co2 = (10_000 - 500 - 8_000) * ef_grid + a_steam_t * STEAM_GJ_PER_T * ef_heat
    b_co2 = 8_000 * ef_grid + b_steam_t * STEAM_GJ_PER_T * ef_heat
    b_market = (8_000 - 2_000) * residual + b_steam_t * STEAM_GJ_PER_T * ef_heat
    return {
        "A": {"comprehensive_tce": a_tce, "total_tco2": a_co2},
        "B": {"comprehensive_tce": b_tce, "total_tco2": b_co2, "total_market_tco2": b_market},
        PARK_ENTITY: {"comprehensive_tce": a_tce + b_tce, "total_tco2": a_co2 + b_co2},
    }


def test_park_with_pv_export_and_purchased_steam(lib):
    acc = evaluate(load_inventory(EXAMPLES / "park_pv_steam.yaml"), lib)
    hand = _example2_hand()
    for entity, expected in hand.items():
        t = totals(acc, entity)
        for col, value in expected.items():
            assert t[col] == pytest.approx(value, rel=1e-12), (entity, col)
    # the numbers written out in the example file's comments
    assert totals(acc, "A")["comprehensive_tce"] == pytest.approx(613.9448864, abs=1e-6)
    assert totals(acc, "B")["comprehensive_tce"] == pytest.approx(1258.892330, abs=1e-6)
    assert totals(acc, PARK_ENTITY)["total_tco2"] == pytest.approx(6706.348, abs=1e-6)
    assert totals(acc, "B")["total_market_tco2"] == pytest.approx(4546.4088, abs=1e-6)
    ints = acc.intensities.set_index(["entity", "indicator"])["value"]
    b_tce = hand["B"]["comprehensive_tce"]
    assert ints[("B", "energy_per_output_value")] == pytest.approx(b_tce / 50_000)
    assert ints[("B", "energy_per_value_added")] == pytest.approx(b_tce / 12_000)
    assert ints[("B", "energy_per_product")] == pytest.approx(b_tce / 20_000)
    assert ints[("B", "carbon_per_product")] == pytest.approx(hand["B"]["total_tco2"] / 20_000)




def test_metered_path_gives_the_offline_answer(lib):
    """Hourly counter readings over 2026 for the same park: same totals as the inventory."""
    park = parse_park(PARK_AB, Path("ex2.yaml"))
    hours = pd.date_range("2026-01-01", "2027-01-01", freq="h", tz="Asia/Shanghai")
    n = len(hours) - 1
    year_totals = {"m-grid.import": 10_000_000.0, "m-grid.export": 500_000.0, "m-pv.total": 2_000_000.0,
                   "m-steam.total": 5_000.0, "m-b-elec.total": 8_000_000.0, "m-b-steam.total": 3_000.0}
    frames = []
    for point, total in year_totals.items():
        # uneven hourly use that adds up to the year's total; counters start at an arbitrary reading
        weights = pd.Series(range(1, n + 1), dtype=float)
        steps = weights / weights.sum() * total
        readings = pd.Series([1234.5, *(1234.5 + steps.cumsum()).tolist()], index=hours.tz_convert("UTC"))
        per_year = spread(counter_deltas(readings), "year")
        frames.append(pd.DataFrame({"period": per_year.index, "point": point, "quantity": per_year.to_numpy()}))
    quantities = pd.concat(frames, ignore_index=True)
    acc = account(ledger(boundary_rules(park), quantities), lib,
                  load_inventory(EXAMPLES / "park_pv_steam.yaml").options,
                  green_kwh=pd.DataFrame({"period": [pd.Timestamp("2026-01-01", tz="Asia/Shanghai")],
                                          "entity": ["B"], "kwh": [2_000_000.0]}))
    offline = evaluate(load_inventory(EXAMPLES / "park_pv_steam.yaml"), lib)
    for entity in ("A", "B", PARK_ENTITY):
        for col in ("comprehensive_tce", "scope1_tco2", "scope2_tco2", "total_tco2"):
            assert totals(acc, entity)[col] == pytest.approx(totals(offline, entity)[col], rel=1e-9), (entity, col)
    assert totals(acc, "B")["total_market_tco2"] == pytest.approx(totals(offline, "B")["total_market_tco2"])
    # traceable: the park's electricity emission rows name their meters and the factor
    park_rows = acc.emissions[(acc.emissions["entity"] == PARK_ENTITY) & (acc.emissions["carrier"] == "electricity")]
    assert set(park_rows["meter"]) == {"m-grid"}
    assert set(park_rows["emission_factors"]) == {"mee.grid.2023.east_china.average"}


def test_process_emissions_with_coal_and_power(lib):
    acc = evaluate(load_inventory(EXAMPLES / "process_cement.yaml"), lib)
    t = totals(acc, "kiln")
    process = 10_000 * 0.98 * 0.4397
    coal = 5000 * 20.908 * 0.02637 * 0.94 * 44 / 12
    assert process == pytest.approx(4309.06)
    assert coal == pytest.approx(9501.494244, abs=1e-6)
    assert t["scope1_tco2"] == pytest.approx(process + coal)
    assert t["scope2_tco2"] == pytest.approx(5000 * 0.5306)
    assert t["total_tco2"] == pytest.approx(16463.554244, abs=1e-6)
    assert t["comprehensive_tce"] == pytest.approx(3571.5 + 614.5)
    cats = acc.emissions[acc.emissions["entity"] == "kiln"].groupby("category")["tco2"].sum()
    assert cats["process"] == pytest.approx(process)
    assert cats["fuel_combustion"] == pytest.approx(coal)
    assert "process.caco3" in acc.factors_used()
