"""The offline inventory and its report: liquid fuels by mass, gross and net CO2, renewables in or out,
factor ids on every row, warnings, refused overrides (400 with the field), and a table a person can read."""

from __future__ import annotations

import copy

import pytest

from lingtan_calc.core.accounting.factors import FactorLibrary
from lingtan_calc.core.accounting.inventory import InventoryError, evaluate, parse_inventory
from lingtan_calc.core.accounting.report import accounts_dict, significant, text_width, totals_table

LIB = FactorLibrary.shipped()
SOURCE = {"document": "supplier test certificate", "edition": "2026"}


def inventory(*energy, overrides=()) -> dict:
    return {"period_start": "2026-01-01", "period_end": "2027-01-01", "factor_overrides": list(overrides),
            "enterprises": [{"id": "e1", "name": "示例企业", "energy": list(energy)}]}


def totals(inv: dict, entity: str = "e1") -> dict:
    acc = evaluate(parse_inventory(inv), LIB)
    return acc.totals.set_index("entity").loc[entity].to_dict()


def test_diesel_by_mass_and_by_volume():
    # GB/T 2589-2020 Annex A: 1.4571 kgce/kg; NDRC 2015: 42.652 GJ/t × 0.0202 tC/GJ × 98 % × 44/12
    co2_per_t = 42.652 * 0.0202 * 0.98 * 44 / 12
    for qty, unit in ((10, "t"), (10_000, "kg")):
        t = totals(inventory({"carrier": "diesel", "quantity": qty, "unit": unit}))
        assert t["comprehensive_tce"] == pytest.approx(14.571, rel=1e-12)
        assert t["scope1_tco2"] == pytest.approx(10 * co2_per_t, rel=1e-12)
    # litres: the shipped density, the middle of GB 19147-2016's 810-845 kg/m³, 0.8275 kg/L
    acc = evaluate(parse_inventory(inventory({"carrier": "diesel", "quantity": 1000, "unit": "L"})), LIB)
    assert acc.totals.iloc[0]["comprehensive_tce"] == pytest.approx(0.8275 * 1.4571, rel=1e-12)
    assert "fuel.diesel.density" in acc.factors_used()
    with pytest.raises(InventoryError, match=r"unit 'kWh' cannot be converted to L \(or t, kg\) for diesel"):
        parse_inventory(inventory({"carrier": "diesel", "quantity": 1, "unit": "kWh"}))


def _solar(export_kwh: float) -> dict:
    return inventory({"carrier": "electricity", "quantity": 1_000_000, "unit": "kWh"},
                     {"carrier": "electricity", "quantity": 300_000, "unit": "kWh", "flow": "renewable"},
                     {"carrier": "electricity", "quantity": export_kwh, "unit": "kWh", "flow": "export"},
                     {"carrier": "heat", "quantity": 1000, "unit": "GJ"})


def test_gross_and_net_emissions():
    t = totals(_solar(100_000))
    # 2023 national grid factor 0.5306 kgCO2/kWh (latest published, applies to 2026); heat 0.11 tCO2/GJ
    assert t["gross_tco2"] == pytest.approx(1_000_000 * 0.5306e-3 + 1000 * 0.11, rel=1e-12)  # 640.6
    assert t["exported_tco2"] == pytest.approx(100_000 * 0.5306e-3, rel=1e-12)  # 53.06
    assert t["net_tco2"] == pytest.approx(587.54, rel=1e-12) == t["total_tco2"]


def test_comprehensive_energy_with_or_without_self_consumed_renewables():
    include = totals(_solar(100_000))
    # (1 000 000 + 300 000 − 100 000) kWh × 0.1229 kgce/kWh + 1000 GJ × 34.12 kgce/GJ = 181.6 tce
    assert include["comprehensive_tce"] == pytest.approx(181.6, rel=1e-12)
    assert include["renewable_self_tce"] == pytest.approx(200_000 * 0.1229e-3, rel=1e-12)  # 24.58
    inv = _solar(100_000)
    inv["options"] = {"onsite_renewables": "exclude"}
    exclude = totals(inv)
    assert exclude["comprehensive_tce"] == pytest.approx(181.6 - 24.58, rel=1e-12)
    for f in ("total_tco2", "gross_tco2", "net_tco2", "total_market_tco2"):  # CO2 the same either way
        assert exclude[f] == pytest.approx(include[f], rel=1e-12)
    assert totals(_solar(400_000))["renewable_self_tce"] == 0.0  # all of it exported, and more


def test_every_row_carries_its_factor_ids():
    inv = _solar(100_000)
    inv["enterprises"][0]["production"] = {"output_value": 5000, "products": [{"product": "组件", "quantity": 100,
                                                                                "unit": "t"}]}
    acc = evaluate(parse_inventory(inv), LIB)
    out = accounts_dict(acc, LIB)
    assert all(r["factors"] for r in out["emission_sources"])
    src = {r["category"]: r["factors"] for r in out["emission_sources"] if r["entity"] == "e1"}
    assert src["purchased_electricity"] == "mee.grid.2023.cn.average,mee.grid.2023.cn.residual"
    assert src["purchased_heat"] == "ndrc.heat.ef"
    carriers = {r["carrier"]: r["factors"] for r in out["by_carrier"] if r["entity"] == "e1"}
    assert carriers == {"electricity": "gbt2589.electricity.dangliang", "heat": "gbt2589.heat.dangliang"}
    ints = {r["indicator"]: r["factors"] for r in out["intensities"] if r["entity"] == "e1"}
    assert ints["energy_per_output_value"] == "gbt2589.electricity.dangliang,gbt2589.heat.dangliang"
    assert "mee.grid.2023.cn.average" in ints["carbon_per_product"]


def test_a_measured_ncv_winning_over_a_coal_equivalent_override_is_a_warning():
    ncv = {"id": "park.gas.ncv", "kind": "ncv", "subject": "natural_gas", "value": 360, "unit": "GJ/10^4 Nm3",
           "valid_from": "2026-01-01", "source": SOURCE, "confidence": "measured", "override": True,
           "author": "lab", "reason": "monthly gas analysis"}
    ce = {**ncv, "id": "park.gas.ce", "kind": "coal_equivalent", "value": 1.25, "unit": "kgce/m3"}
    acc = evaluate(parse_inventory(inventory({"carrier": "natural_gas", "quantity": 100, "unit": "10^4 Nm3"},
                                             overrides=[ncv, ce])), LIB)
    # GB/T 2589-2020 ch. 8: 100 × 10^4 m³ × 360 GJ/10^4 m³ / 29.307 GJ/tce
    assert acc.totals.iloc[0]["comprehensive_tce"] == pytest.approx(36_000 / 29.307, rel=1e-12)
    assert len(acc.warnings) == 1 and "'park.gas.ncv' is used" in acc.warnings[0] and "'park.gas.ce'" in acc.warnings[0]
    assert accounts_dict(acc, LIB.with_overrides(parse_inventory(
        inventory(overrides=[ncv, ce])).factor_overrides))["warnings"] == acc.warnings


@pytest.mark.parametrize(("override", "field", "words"), [
    ({"id": "gbt2589.diesel"}, "factor_overrides.0.id", "is a shipped factor id"),
    ({"override": False}, "factor_overrides.0.override", "is not marked override"),
    ({"unit": "kgce/kWh"}, "factor_overrides.0", "needs kgce/m3"),
])
def test_bad_overrides_answer_400_naming_the_field(client, override, field, words):
    good = {"id": "park.gas.ce", "kind": "coal_equivalent", "subject": "natural_gas", "value": 1.25,
            "unit": "kgce/m3", "valid_from": "2026-01-01", "source": SOURCE, "confidence": "measured",
            "override": True, "author": "lab", "reason": "supplier certificate"}
    inv = inventory({"carrier": "natural_gas", "quantity": 100, "unit": "10^4 Nm3"}, overrides=[{**good, **override}])
    r = client.post("/api/v1/accounting/evaluate", json=inv)
    assert r.status_code == 400, r.json
    assert r.json["error"]["field"] == field and words in r.json["error"]["message"]


def test_a_repeated_override_id_answers_400(client):
    f = {"id": "park.gas.ce", "kind": "coal_equivalent", "subject": "natural_gas", "value": 1.25, "unit": "kgce/m3",
         "valid_from": "2026-01-01", "source": SOURCE, "confidence": "c", "override": True, "author": "a",
         "reason": "r"}
    r = client.post("/api/v1/accounting/evaluate", json=inventory(overrides=[f, copy.deepcopy(f)]))
    assert r.status_code == 400 and r.json["error"]["field"] == "factor_overrides.1.id"


def test_the_table_is_a_report_aligned_for_chinese_text():
    acc = evaluate(parse_inventory(_solar(100_000)), LIB)
    text = totals_table(acc, LIB)
    for title in ("综合能耗与排放 Totals", "分品种能源 Energy by carrier", "强度 Intensities", "排放源 Emission sources",
                  "使用的因子 Factors used"):
        assert title in text
    lines = text.splitlines()
    head = lines.index("综合能耗与排放 Totals") + 2
    end = lines.index("", head)
    header, rule, *rows = lines[head:end]
    assert [r.split()[1] for r in rows] == ["e1", "park"]
    # every column ends where its header ends, whatever mix of Chinese and Latin text is in it
    assert {text_width(x) for x in (header, rule, *rows)} == {text_width(rule)}
    assert "181.6" in rows[0] and "587.5" in rows[0]  # 4 significant figures
    assert "mee.grid.2023.cn.average" in text and "GB/T 2589-2020" in text


def test_significant_figures():
    assert significant(1214.3, 4) == "1,214"
    assert significant(0.0555390, 4) == "0.05554"
    assert significant(16463.554244, 4) == "16,460"
    assert significant(0.0, 4) == "0" and significant(None, 4) == ""
