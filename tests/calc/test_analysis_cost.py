"""Tariffs and energy cost against hand-computed numbers (docs/analysis.md §2)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lingtan_calc.core.analysis.cost import (
    NoTariffError,
    cost_summary,
    demand_charge,
    energy_cost,
    hourly_prices,
    unpriced,
)
from lingtan_calc.core.analysis.tariffs import (
    TZ,
    Band,
    TariffFileError,
    band_shares,
    default_tariffs,
    load_tariff_file,
    peak_valley_ratio,
)

TARIFF = """\
tariffs:
  - id: t1
    name: test tariff
    source: {document: "hand-made for the test", confidence: "n/a"}
    valid_from: 2026-01-01
    electricity:
      prices: {peak: 1.0, flat: 0.6, valley: 0.3, critical_peak: {of: peak, factor: 1.2}}
      seasons:
        - name: summer
          months: [7, 8]
          windows:
            - {start: "00:00", end: "08:00", band: valley}
            - {start: "08:00", end: "10:00", band: peak}
            - {start: "10:00", end: "10:30", band: critical_peak}
            - {start: "10:30", end: "11:00", band: peak}
            - {start: "11:00", end: "17:00", band: flat}
            - {start: "17:00", end: "22:00", band: peak}
            - {start: "22:00", end: "24:00", band: flat}
        - name: rest
          months: [1, 2, 3, 4, 5, 6, 9, 10, 11, 12]
          windows:
            - {start: "00:00", end: "08:00", band: valley}
            - {start: "08:00", end: "11:00", band: peak}
            - {start: "11:00", end: "17:00", band: flat}
            - {start: "17:00", end: "22:00", band: peak}
            - {start: "22:00", end: "24:00", band: flat}
      demand_charge: {basis: max_demand, price: 40.0}
    carriers: {natural_gas: 3.6}
"""


@pytest.fixture
def tariffs(tmp_path: Path):
    path = tmp_path / "tariffs.yaml"
    path.write_text(TARIFF, encoding="utf-8")
    return load_tariff_file(path)


def _day(kwh_per_hour: float, day: str = "2026-07-01") -> pd.DataFrame:
    hours = pd.date_range(day, periods=24, freq="h", tz=TZ)
    return pd.DataFrame({"time": hours, "entity": "e1", "carrier": "electricity", "quantity": kwh_per_hour})


def test_critical_peak_half_hour_is_split(tariffs) -> None:
    shares = band_shares(pd.date_range("2026-07-01 10:00", periods=1, freq="h", tz=TZ), tariffs[0])
    assert shares.iloc[0].to_dict() == {"critical_peak": 0.5, "peak": 0.5, "flat": 0.0, "valley": 0.0, "deep_valley": 0.0}
    assert tariffs[0].electricity.price(Band.critical_peak) == pytest.approx(1.2)


def test_energy_cost_by_band(tariffs) -> None:
    gas = pd.DataFrame({"time": [pd.Timestamp("2026-07-01 09:00", tz=TZ)], "entity": "e1",
                        "carrier": "natural_gas", "quantity": 10.0})
    costs = energy_cost(pd.concat([_day(100.0), gas]), tariffs).set_index(["carrier", "band"])
    # valley 8 h; peak 08-10, 10:30-11, 17-22 = 7.5 h; critical 0.5 h; flat 11-17, 22-24 = 8 h
    assert costs.loc[("electricity", "valley"), "quantity"] == pytest.approx(800.0)
    assert costs.loc[("electricity", "peak"), "quantity"] == pytest.approx(750.0)
    assert costs.loc[("electricity", "critical_peak"), "quantity"] == pytest.approx(50.0)
    assert costs.loc[("electricity", "flat"), "quantity"] == pytest.approx(800.0)
    assert costs.loc[("electricity", "valley"), "cost"] == pytest.approx(240.0)
    assert costs.loc[("electricity", "critical_peak"), "cost"] == pytest.approx(60.0)
    assert costs.loc[("natural_gas", ""), "cost"] == pytest.approx(36.0)
    elec = costs.xs("electricity")
    assert elec["cost"].sum() == pytest.approx(240.0 + 750.0 + 60.0 + 480.0)  # 1530 CNY for 2400 kWh


def test_demand_charge_and_average_price(tariffs) -> None:
    day = _day(100.0)
    start, end = pd.Timestamp("2026-07-01", tz=TZ), pd.Timestamp("2026-07-02", tz=TZ)
    demand = demand_charge(day.set_index("time")["quantity"], "e1", tariffs, start, end)
    assert list(demand["month"]) == ["2026-07"]
    assert demand["demand_kw"].iloc[0] == pytest.approx(100.0)
    assert demand["cost"].iloc[0] == pytest.approx(100.0 * 40.0 / 31)  # one day of July's charge
    summary = cost_summary(energy_cost(day, tariffs), demand).set_index("carrier")
    assert summary.loc["electricity", "energy_price"] == pytest.approx(1530.0 / 2400.0)
    assert summary.loc["electricity", "average_price"] == pytest.approx((1530.0 + 4000.0 / 31) / 2400.0)


def test_no_tariff_and_unpriced_carrier(tariffs) -> None:
    with pytest.raises(NoTariffError, match="no tariff applies to entity 'e1' on 2025-12-31"):
        energy_cost(_day(1.0, "2025-12-31"), tariffs)
    steam = pd.DataFrame({"time": [pd.Timestamp("2026-07-01", tz=TZ)], "entity": "e1", "carrier": "steam", "quantity": 1.0})
    assert unpriced(steam, tariffs) == ["steam (t1)"]
    assert energy_cost(steam, tariffs).empty


def test_shipped_tariff_meets_the_national_ratio() -> None:
    (tariff,) = default_tariffs()
    assert peak_valley_ratio(tariff) >= 4.0  # 发改价格〔2021〕1093号
    assert tariff.electricity.price(Band.critical_peak) == pytest.approx(1.2 * tariff.electricity.price(Band.peak))
    assert "unconfirmed" in tariff.source.confidence


@pytest.mark.parametrize(("old", "new", "message"), [
    ('{start: "08:00", end: "10:00", band: peak}', '{start: "08:00", end: "10:15", band: peak}',
     r"seasons\[0\]: windows\[2\] 10:00-10:30 \(critical_peak\) overlaps 08:00-10:15 \(peak\)"),
    ('{start: "22:00", end: "24:00", band: flat}\n        - name: rest', '{start: "22:00", end: "23:00", band: flat}\n'
     '        - name: rest', r"season 'summer': the windows leave 23:00"),
    ("months: [7, 8]", "months: [6, 7, 8]", r"month 6 is in season 'summer' and in 'rest'"),
    ("critical_peak: {of: peak, factor: 1.2}", "critical_peak: {of: deep_valley, factor: 1.2}",
     r"prices\.critical_peak is a multiple of 'deep_valley', which has no price"),
    ('end: "08:00", band: valley}\n            - {start: "08:00", end: "10:00"',
     'end: "08:00", band: valley}\n            - {start: "08:00", end: "25:00"', r"time '25:00' is not between"),
    ("natural_gas: 3.6", "natural_gas: -3.6", r"carrier prices \{'natural_gas': -3.6\} are negative"),
])
def test_bad_tariff_names_file_field_and_value(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in TARIFF
    path = tmp_path / "bad.yaml"
    path.write_text(TARIFF.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(TariffFileError, match=message) as err:
        load_tariff_file(path)
    assert str(path) in str(err.value) and "tariffs[0]" in str(err.value)


def test_overlapping_validity(tmp_path: Path) -> None:
    second = TARIFF.split("tariffs:\n", 1)[1].replace("id: t1", "id: t2").replace("valid_from: 2026-01-01", "valid_from: 2026-06-01")
    path = tmp_path / "two.yaml"
    path.write_text(TARIFF + second, encoding="utf-8")
    with pytest.raises(TariffFileError, match=r"tariffs\[1\] \('t2', valid from 2026-06-01\) overlaps tariffs\[0\] \('t1'\)"):
        load_tariff_file(path)
    path.write_text(TARIFF.replace("valid_from: 2026-01-01", "valid_from: 2026-01-01\n    valid_to: 2026-06-01") + second,
                    encoding="utf-8")
    assert [t.id for t in load_tariff_file(path)] == ["t1", "t2"]


def test_contract_demand_charges_the_excess_twice(tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(TARIFF.replace("demand_charge: {basis: max_demand, price: 40.0}",
                                   "demand_charge: {basis: max_demand, price: 40.0, contract_kw: {e1: 100.0, e2: 200.0}}"),
                    encoding="utf-8")
    tariffs = load_tariff_file(path)
    start, end = pd.Timestamp("2026-07-01", tz=TZ), pd.Timestamp("2026-08-01", tz=TZ)
    hours = pd.date_range(start, end, freq="h", tz=TZ, inclusive="left")
    kwh = pd.Series(90.0, index=hours)
    kwh.iloc[5] = 120.0
    over = demand_charge(kwh, "e1", tariffs, start, end).iloc[0]
    # 100 kW contract, 120 kW peak: 100 + 2 × (120 − 105) = 130 kW
    assert over["charged"] == pytest.approx(130.0) and over["cost"] == pytest.approx(130.0 * 40.0)
    assert "contract demand" in over["basis"]
    under = demand_charge(kwh, "e2", tariffs, start, end).iloc[0]  # 120 kW of a 200 kW contract: the contract
    assert under["charged"] == pytest.approx(200.0)
    free = demand_charge(kwh, "e3", tariffs, start, end).iloc[0]  # no contract: the maximum demand
    assert free["charged"] == pytest.approx(120.0) and "contract" not in free["basis"]
    path.write_text(TARIFF.replace("demand_charge: {basis: max_demand, price: 40.0}",
                                   "demand_charge: {basis: max_demand, price: 40.0, contract_kw: {e1: 0}}"),
                    encoding="utf-8")
    with pytest.raises(TariffFileError, match=r"tariffs\[0\].electricity.demand_charge: contract_kw \{'e1': 0.0\}"):
        load_tariff_file(path)


def test_hourly_prices(tariffs) -> None:
    hours = pd.date_range("2026-07-01 07:00", periods=4, freq="h", tz=TZ)  # valley, peak, peak, critical + peak
    assert list(hourly_prices(hours, "e1", tariffs)) == pytest.approx([0.3, 1.0, 1.0, 1.1])
