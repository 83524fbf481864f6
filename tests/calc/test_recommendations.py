"""Recommendation rules against hand-computed estimates, the store's life cycle, and the API on a live InfluxDB."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from lingtan.db import make_engine, session_factory
from lingtan_calc.adapters.recommendation_store import DecisionError, decide, listed, store_evaluation
from lingtan_calc.core.analysis.limits import compare_with_limits, default_limits
from lingtan_calc.core.analysis.recommendations import Evidence, Prices, recommend
from tests.calc.test_api import computed

PRICES = Prices(peak=1.04, valley=0.26, average_electricity=0.7, grid_factor_t_per_mwh=0.5703, tce_per_kwh=0.1229e-3,
                demand_per_kw_month=40.0, fuel_cny_per_tce=3_000.0, fuel_tco2_per_tce=1.65)


def evidence(**kw) -> Evidence:
    return Evidence(entity="e1", days=30.0, prices=PRICES, **kw)


def test_valley_shift() -> None:
    (rec,) = recommend(evidence(band_kwh={"peak": 4_000.0, "flat": 3_000.0, "valley": 3_000.0}))
    assert rec["rule"] == "valley_shift"
    assert rec["saving_cny"] == pytest.approx(0.1 * 4_000 * 365 / 30 * (1.04 - 0.26))
    assert rec["saving_tce"] == 0.0 and "moved to the valley" in rec["method"]
    assert recommend(evidence(band_kwh={"peak": 3_000.0, "flat": 4_000.0, "valley": 3_000.0})) == []  # 30 % < 35 %


def test_baseload_high() -> None:
    units = pd.DataFrame([{"enterprise": "e1", "unit_id": "u1", "mean_kw": 150.0, "peak_kw": 300.0, "load_factor": 0.5,
                           "baseload_kw": 100.0, "baseload_share": 0.6, "non_workday_ratio": 0.8}])
    (rec,) = recommend(evidence(units=units))
    kwh = 0.1 * 100.0 * 8760
    assert rec["subject"] == "e1/u1"
    assert rec["saving_cny"] == pytest.approx(kwh * 0.7)
    assert rec["saving_tce"] == pytest.approx(kwh * 0.1229e-3)
    assert rec["saving_tco2"] == pytest.approx(kwh * 0.5703 / 1000)


def test_peak_shaving() -> None:
    hours = pd.date_range("2026-03-01", periods=30 * 24, freq="h", tz="Asia/Shanghai")
    kwh = pd.Series(1_000.0, index=hours)
    kwh.iloc[[10, 200, 400, 600, 700]] = 1_300.0
    (rec,) = recommend(evidence(hourly_import_kwh=kwh))
    assert rec["rule"] == "peak_shaving" and rec["saving_cny"] == pytest.approx(300.0 * 40.0 * 12)
    kwh.iloc[[10, 200, 400, 600, 700]] = 1_100.0  # 10 % above: not a spike worth shaving
    assert recommend(evidence(hourly_import_kwh=kwh)) == []


def test_efficiency_drop_and_ranking() -> None:
    eff = pd.DataFrame([("boiler1", "boiler", 0.85, 0.92, 100.0), ("chp", "chp", 0.80, 0.81, 500.0)],
                       columns=["node", "kind", "now", "best", "fuel_tce"])
    units = pd.DataFrame([{"enterprise": "e1", "unit_id": "u1", "mean_kw": 20.0, "peak_kw": 30.0, "load_factor": 0.7,
                           "baseload_kw": 10.0, "baseload_share": 0.7, "non_workday_ratio": 0.9}])
    recs = recommend(evidence(efficiencies=eff, units=units))
    assert [r["rule"] for r in recs] == ["efficiency_drop", "baseload_high"]  # ranked by CNY
    tce = 100.0 * (1 - 0.85 / 0.92) * 365 / 30
    assert recs[0]["subject"] == "boiler1" and recs[0]["saving_tce"] == pytest.approx(tce)
    assert recs[0]["saving_cny"] == pytest.approx(tce * 3_000.0) and recs[0]["saving_tco2"] == pytest.approx(tce * 1.65)


def test_store_life_cycle(tmp_path) -> None:
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path / 'r.db'}"))
    rec = {"rule": "baseload_high", "subject": "e1/u1", "saving_tce": 1.0, "saving_cny": 10.0, "saving_tco2": 2.0,
           "method": "m", "evidence": {"baseload_kw": 100.0}}
    with sessions() as s:
        assert store_evaluation(s, "e1", [rec]) == {"opened": 1, "updated": 0, "resolved": 0}
        assert store_evaluation(s, "e1", [{**rec, "saving_cny": 12.0}]) == {"opened": 0, "updated": 1, "resolved": 0}
        (row,) = listed(s, "e1", ("open",))
        assert row.saving_cny == 12.0
        with pytest.raises(DecisionError, match="states its reason"):
            decide(s, row.id, "dismiss", "mgr", "  ")
        decide(s, row.id, "dismiss", "mgr", "the night shift runs the kilns")
        store_evaluation(s, "e1", [rec])  # still firing: stays dismissed
        assert listed(s, "e1", ("dismissed",))[0].reason == "the night shift runs the kilns"
        assert store_evaluation(s, "e1", []) == {"opened": 0, "updated": 0, "resolved": 1}
        with pytest.raises(DecisionError, match="resolved"):
            decide(s, row.id, "acknowledge", "mgr", "")
        assert store_evaluation(s, "e1", [rec])["opened"] == 1  # fires again: open again, decision cleared
        (again,) = listed(s, "e1", ("open",))
        assert again.id == row.id and again.decided_by == ""


def test_evaluate_and_decide_through_the_api(app, client):
    computed(app)
    r = client.post("/api/v1/recommendations/evaluate", json={"end": "2026-03-03"})
    assert r.status_code == 200, r.json
    body = client.get("/api/v1/recommendations?entity=B").json
    (rec,) = body["rows"]
    assert (rec["rule"], rec["subject"], rec["status"]) == ("baseload_high", "B/b-line", "open")
    # B draws a flat 800 kW: the base load is all of it; 10 % less for a year at B's average price over the window
    kwh = 0.1 * 800.0 * 8760
    average = (38_400 * 0.65 + 800.0 * 40.0 * 2 / 31) / 38_400  # energy at 0.65 CNY/kWh and 2/31 of March's demand charge
    assert rec["saving_cny"] == pytest.approx(kwh * average)
    assert rec["saving_tce"] == pytest.approx(kwh * 0.1229e-3)
    r = client.post(f"/api/v1/recommendations/{rec['id']}/dismiss", json={}, headers={"X-Lingtan-User": "mgr"})
    assert r.status_code == 400 and r.json["error"]["field"] == "reason"
    r = client.post(f"/api/v1/recommendations/{rec['id']}/dismiss", json={"reason": "the line runs three shifts"},
                    headers={"X-Lingtan-User": "mgr"})
    assert r.status_code == 200 and r.json["status"] == "dismissed" and r.json["decided_by"] == "mgr"
    assert client.get("/api/v1/recommendations?entity=B").json["rows"] == []
    assert len(client.get("/api/v1/recommendations?entity=B&status=dismissed").json["rows"]) == 1
    assert client.get("/api/v1/recommendations?status=maybe").json["error"]["field"] == "status"
    assert client.post("/api/v1/recommendations/999/acknowledge", json={}).status_code == 404


def test_contract_demand_raise_and_lower() -> None:
    hours = pd.date_range("2026-03-01", periods=30 * 24, freq="h", tz="Asia/Shanghai")
    kwh = pd.Series(900.0, index=hours)
    kwh.iloc[100] = 1_260.0  # the month's maximum demand [kW]
    contract = dataclasses.replace(PRICES, contract_kw=1_000.0)
    (rec,) = [r for r in recommend(Evidence(entity="e1", days=30.0, prices=contract, hourly_import_kwh=kwh))
              if r["rule"] == "contract_demand"]
    # now: 1,000 + 2 × (1,260 − 1,050) = 1,420 kW charged; at 1,260 / 1.05 = 1,200 kW: 1,200 kW charged
    assert rec["evidence"]["charged_kw"] == pytest.approx(1_420.0)
    assert rec["evidence"]["suggested_contract_kw"] == pytest.approx(1_200.0)
    assert rec["saving_cny"] == pytest.approx(220.0 * 40.0 * 12) and rec["method"].startswith("raise")
    high = dataclasses.replace(PRICES, contract_kw=2_000.0)  # the peak uses 63 % of the contract
    (low,) = recommend(Evidence(entity="e1", days=30.0, prices=high, hourly_import_kwh=kwh))
    assert low["rule"] == "contract_demand" and low["method"].startswith("lower")
    assert low["saving_cny"] == pytest.approx((2_000.0 - 1_200.0) * 40.0 * 12)
    near = dataclasses.replace(PRICES, contract_kw=1_230.0)  # 1,230 vs 1,200 kW: under 5 % of the charge
    assert recommend(Evidence(entity="e1", days=30.0, prices=near, hourly_import_kwh=kwh)) == []


def test_pv_export_below_the_price_paid() -> None:
    hours = pd.date_range("2026-03-01", periods=30 * 24, freq="h", tz="Asia/Shanghai")
    bought = pd.Series(1_000.0, index=hours)
    noon = hours[hours.hour.isin([11, 12])]
    exported = pd.Series(400.0, index=noon)  # 2 h a day in the flat band (11:00-13:00)
    prices = dataclasses.replace(PRICES, export_price=0.391)
    paid = pd.Series(0.65, index=noon)
    (rec,) = recommend(Evidence(entity="e1", days=30.0, prices=prices, hourly_import_kwh=bought,
                                hourly_export_kwh=exported, hourly_price=paid))
    total = 400.0 * 2 * 30  # 3.3 % of the 720,000 kWh bought
    assert rec["rule"] == "pv_export" and rec["evidence"]["exported_kwh"] == pytest.approx(total)
    assert rec["saving_cny"] == pytest.approx(0.3 * total * 365 / 30 * (0.65 - 0.391))
    assert rec["saving_tce"] == 0.0
    small = pd.Series(5.0, index=noon)  # 300 kWh of 720,000 bought: under 2 %
    assert recommend(Evidence(entity="e1", days=30.0, prices=prices, hourly_import_kwh=bought,
                              hourly_export_kwh=small, hourly_price=paid)) == []


def test_product_limit_first_when_over_the_limit() -> None:
    found = pd.DataFrame([
        {"entity": "e1", "product": "熟料", "output_unit": "t", "tce": 1_200.0, "output": 10_000.0},  # 120: over 117
        {"entity": "e1", "product": "二甲醚", "output_unit": "t", "tce": 1_130.0, "output": 1_000.0},  # 1,130: grade 2
    ])
    products, _ = compare_with_limits(found, default_limits())
    prices = dataclasses.replace(PRICES, cny_per_tce=2_000.0, tco2_per_tce=2.5)
    units = pd.DataFrame([{"enterprise": "e1", "unit_id": "u1", "mean_kw": 20_000.0, "peak_kw": 30_000.0,
                           "load_factor": 0.7, "baseload_kw": 10_000.0, "baseload_share": 0.7, "non_workday_ratio": 0.9}])
    recs = recommend(Evidence(entity="e1", days=30.0, prices=prices, products=products, units=units))
    assert [r["rule"] for r in recs] == ["product_limit", "baseload_high", "product_limit"]
    over, grade = recs[0], recs[2]
    assert over["subject"] == "e1/熟料" and over["saving_tce"] == pytest.approx(3.0 * 10_000 / 1000 * 12)
    assert over["saving_cny"] == pytest.approx(360.0 * 2_000.0) and over["saving_tco2"] == pytest.approx(360.0 * 2.5)
    assert "GB 16780-2021" in over["method"] and over["evidence"]["grade"] is None
    assert grade["evidence"]["grade"] == 2 and grade["saving_tce"] == pytest.approx(10.0 * 1_000 / 1000 * 12)


def test_efficiency_below_the_rated_one() -> None:
    eff = pd.DataFrame([("boiler1", "boiler", 0.86, 0.92, 100.0, "rated")],
                       columns=["node", "kind", "now", "best", "fuel_tce", "reference"])
    (rec,) = recommend(evidence(efficiencies=eff))
    assert rec["evidence"]["reference"] == "rated" and "against 92.0% its rated" in rec["method"]
    assert rec["saving_tce"] == pytest.approx(100.0 * (1 - 0.86 / 0.92) * 365 / 30)
