"""The energy balance table, conversion losses and efficiencies against hand-computed numbers.

A small park: 10,000 kWh from the grid, 1,000 kWh of PV and 2,000 kWh from a gas CHP pass a
transformer that feeds two units, an export, a battery (1,000 kWh in, 900 kWh out) and a
chiller. At 当量值: 0.1229 kgce/kWh, 1.2143 kgce/m3 of natural gas, 34.12 kgce/GJ of heat.
"""

from __future__ import annotations

import pandas as pd
import pytest

from lingtan.workdays import is_workday
from lingtan_calc.core.analysis.balance import (
    balance_table,
    balance_warnings,
    boundary_check,
    closure,
    conversion_losses,
)
from lingtan_calc.core.analysis.efficiency import conversion_efficiencies, load_kpis

E, G, H = 0.1229e-3, 1.2143e-3, 34.12e-3  # tce per kWh, per m3, per GJ

NODES = pd.DataFrame([
    ("grid", "电网", "supply", "grid"), ("pv", "光伏", "supply", "onsite_generation"),
    ("gas", "天然气", "supply", "gas_main"), ("tx", "主变", "conversion", "transformer"),
    ("chp", "CHP", "conversion", "chp"), ("boiler", "锅炉", "conversion", "boiler"),
    ("bess", "储能", "conversion", "storage"), ("chiller", "冷站", "conversion", "chiller"),
    ("u1", "一车间", "end_use", "unit"), ("u2", "二车间", "end_use", "unit"), ("exp", "上网", "end_use", "export"),
], columns=["id", "name", "type", "kind"])


def flows(tx_to_u2: float = 3_200.0) -> pd.DataFrame:
    rows = [("grid", "tx", "electricity", 10_000.0, E), ("pv", "tx", "electricity", 1_000.0, E),
            ("chp", "tx", "electricity", 2_000.0, E), ("bess", "tx", "electricity", 900.0, E),
            ("tx", "u1", "electricity", 8_000.0, E), ("tx", "exp", "electricity", 500.0, E),
            ("tx", "bess", "electricity", 1_000.0, E), ("tx", "chiller", "electricity", 1_000.0, E),
            ("tx", "u2", "electricity", tx_to_u2, E), ("gas", "chp", "natural_gas", 1_000.0, G),
            ("chp", "u2", "heat", 15.0, H), ("gas", "boiler", "natural_gas", 500.0, G),
            ("boiler", "u1", "heat", 16.0, H), ("chiller", "u1", "cooling", 10.0, H)]
    df = pd.DataFrame(rows, columns=["source", "target", "carrier", "quantity", "coef"])
    return df.assign(tce=df["quantity"] * df["coef"]).drop(columns="coef")


def test_rows_and_closure() -> None:
    table = balance_table(flows(), NODES)
    elec = table[table["carrier"] == "electricity"].groupby("row")["quantity"].sum()
    assert elec.to_dict() == pytest.approx({
        "purchase": 10_000.0, "own_generation": 1_000.0, "conversion_output": 2_000.0, "storage_discharge": 900.0,
        "conversion_input": 1_000.0, "storage_charge": 1_000.0, "distribution": 200.0, "end_use": 11_200.0,
        "export": 500.0})
    dist = table[table["row"] == "distribution"].iloc[0]
    assert dist["throughput"] == pytest.approx(13_900.0)
    end_use = table[(table["row"] == "end_use") & (table["carrier"] == "electricity")].set_index("node")
    assert end_use.loc["u1", "node_name"] == "一车间" and end_use.loc["u2", "quantity"] == pytest.approx(3_200.0)
    closed = closure(table).set_index("carrier")
    assert closed.loc["electricity", "sources"] == pytest.approx(13_900.0)
    assert closed["imbalance"].abs().max() == pytest.approx(0.0, abs=1e-9)
    assert closed["imbalance_tce"].abs().max() == pytest.approx(0.0, abs=1e-12)
    assert balance_warnings(table) == []  # 200 kWh is 1.4 % of 13,900: a transformer's loss


def test_conversion_losses_and_efficiency() -> None:
    table = balance_table(flows(), NODES)
    losses = conversion_losses(table).set_index("node")
    assert losses.loc["chp", "input_tce"] == pytest.approx(1.2143)
    assert losses.loc["chp", "loss_tce"] == pytest.approx(1.2143 - 0.2458 - 0.5118)
    assert losses.loc["boiler", "loss_tce"] == pytest.approx(0.60715 - 0.54592)
    eff = conversion_efficiencies(flows(), NODES).set_index("node")
    assert eff.loc["chp", "electrical_efficiency"] == pytest.approx(0.2458 / 1.2143)
    assert eff.loc["chp", "thermal_efficiency"] == pytest.approx(0.5118 / 1.2143)
    assert eff.loc["chp", "total_efficiency"] == pytest.approx(0.7576 / 1.2143)
    assert eff.loc["boiler", "efficiency"] == pytest.approx(0.54592 / 0.60715)
    assert eff.loc["bess", "round_trip_efficiency"] == pytest.approx(0.9)
    assert eff.loc["tx", "loss"] == pytest.approx(200.0)
    assert eff.loc["tx", "loss_ratio"] == pytest.approx(200.0 / 13_900.0)
    assert eff.loc["chiller", "cop"] == pytest.approx(10.0 * 1e6 / 3600 / 1_000.0)


def test_what_no_meter_could_deliver_is_named() -> None:
    # u2's feeder reads 2,000 kWh less: the transformer "loses" 2,200 kWh, 15.8 % of what enters
    low = balance_table(flows(tx_to_u2=1_200.0), NODES)
    (warning,) = balance_warnings(low)
    assert warning.startswith("tx (主变): the residual 2200 electricity is more than 5% of its throughput")
    # and reads 1,000 kWh high: more leaves the transformer than enters it
    high = balance_table(flows(tx_to_u2=4_200.0), NODES)
    (warning,) = balance_warnings(high)
    assert "800 electricity more leaves than enters" in warning
    # a boiler that puts out more heat than its gas holds has an unmetered input
    f = flows()
    f.loc[f["target"] == "boiler", ["quantity", "tce"]] = [100.0, 100.0 * G]
    warnings = balance_warnings(balance_table(f, NODES))
    assert any(w.startswith("boiler (锅炉): output 0.54592 tce exceeds input 0.12143 tce") for w in warnings)


def test_boundary_check_against_the_accounting() -> None:
    table = balance_table(flows(), NODES)
    accounted = pd.DataFrame([("input", "electricity", 10_000.0), ("input", "natural_gas", 1_500.0),
                              ("export", "electricity", -500.0), ("renewable", "electricity", 1_000.0)],
                             columns=["flow", "carrier", "quantity"])
    check = boundary_check(table, accounted)
    assert check["ok"].all()
    accounted.loc[0, "quantity"] = 10_100.0  # a grid meter the topology does not know
    bad = boundary_check(table, accounted).set_index(["carrier", "what"])
    assert not bad.loc[("electricity", "purchase"), "ok"]
    assert bad.loc[("electricity", "purchase"), "difference"] == pytest.approx(100.0)


def test_load_kpis_with_chinese_workdays() -> None:
    # two weeks of September 2026, with a make-up working Sunday (20 September)
    hours = pd.date_range("2026-09-14", "2026-09-28", freq="h", tz="Asia/Shanghai", inclusive="left")
    work = is_workday(hours.normalize())
    kwh = pd.Series(200.0, index=hours)
    kwh[(hours.hour >= 8) & (hours.hour < 20) & work] = 800.0  # day shift on working days
    out = load_kpis(kwh)
    assert out["peak_kw"] == 800.0 and out["baseload_kw"] == 200.0
    working_days = int(work.sum() / 24)
    mean = (200.0 * len(hours) + 600.0 * 12 * working_days) / len(hours)
    assert out["mean_kw"] == pytest.approx(mean)
    assert out["load_factor"] == pytest.approx(mean / 800.0)
    assert out["baseload_share"] == pytest.approx(200.0 * len(hours) / kwh.sum())
    assert out["non_workday_ratio"] == pytest.approx(200.0 / ((200.0 * 12 + 800.0 * 12) / 24))


def test_make_up_workday_counts_as_working() -> None:
    # 2026-09-20 is a Sunday worked in exchange for the National Day holiday (调休); 2026-10-01 is the holiday
    # itself; 2026-09-27 is an ordinary Sunday
    days = pd.DatetimeIndex(["2026-09-21", "2026-09-20", "2026-10-01", "2026-09-27"], tz="Asia/Shanghai")
    assert is_workday(days).tolist() == [True, True, False, False]
