"""The analysis endpoints of the calc API against a live InfluxDB, checked against hand-computed numbers.

The example park (tests/calc/parks.py) buys 1,000 kWh of electricity and 0.5 t of steam every
hour; enterprise B receives 800 kWh and 0.3 t of them from A. The shipped demo tariff prices
electricity at 0.26 (valley, 8 h), 1.04 (peak, 8 h) and 0.65 CNY/kWh (flat, 8 h), steam at
240 CNY/t, with a demand charge of 40 CNY/kW per month.
"""

from __future__ import annotations

import pytest

from tests.calc.test_api import computed
from tests.calc.test_engine_influx import day_expectation

DAY = "start=2026-03-01&end=2026-03-02"


def test_cost_of_a_day_by_band(app, client):
    computed(app)
    body = client.get(f"/api/v1/analysis/cost?entity=park&{DAY}").json
    bands = {(r["carrier"], r["band"]): r for r in body["bands"]}
    assert bands[("electricity", "valley")]["quantity"] == pytest.approx(8_000.0)
    assert bands[("electricity", "valley")]["cost"] == pytest.approx(8_000 * 0.26)
    assert bands[("electricity", "peak")]["cost"] == pytest.approx(8_000 * 1.04)
    assert bands[("electricity", "flat")]["cost"] == pytest.approx(8_000 * 0.65)
    assert bands[("steam", "")]["cost"] == pytest.approx(12.0 * 240.0)
    (demand,) = body["demand"]
    assert demand["month"] == "2026-03" and demand["demand_kw"] == pytest.approx(1_000.0)
    # the demo tariff's park contract demand is 4,000 kW: a peak of 1,000 kW pays for the contract
    assert demand["charged"] == pytest.approx(4_000.0 / 31) and "contract demand" in demand["basis"]
    assert demand["cost"] == pytest.approx(4_000.0 * 40.0 / 31)  # one day of March's demand charge
    summary = {r["carrier"]: r for r in body["summary"]}
    assert summary["electricity"]["energy_price"] == pytest.approx(15_600 / 24_000)
    assert summary["electricity"]["average_price"] == pytest.approx((15_600 + 160_000 / 31) / 24_000)
    assert body["total_cost"] == pytest.approx(15_600 + 160_000 / 31 + 2_880)
    assert body["tariffs"][0]["peak_valley_ratio"] == pytest.approx(4.0)
    assert body["warnings"] == []
    b = client.get(f"/api/v1/analysis/cost?entity=B&{DAY}").json  # what B receives from A is what it pays for
    assert {r["carrier"]: r["energy_cost"] for r in b["summary"]} == pytest.approx(
        {"electricity": 19_200 * 0.65, "steam": 24 * 0.3 * 240.0})


def test_structure_compare_and_pareto(app, client):
    computed(app)
    expected = day_expectation(24.0)
    body = client.get(f"/api/v1/analysis/structure?entity=park&{DAY}&by=enterprise").json
    shares = {r["entity"]: r for r in body["rows"]}
    assert body["total_tce"] == pytest.approx(expected["park"])
    assert shares["B"]["tce"] == pytest.approx(expected["B"])
    assert shares["B"]["share"] == pytest.approx(expected["B"] / expected["park"])
    carriers = {r["carrier"]: r for r in client.get(f"/api/v1/analysis/structure?entity=B&{DAY}").json["rows"]}
    assert carriers["electricity"]["quantity"] == pytest.approx(19_200.0)
    # 环比: 2 March against 1 March (the same hourly readings, so no change)
    cmp = client.get("/api/v1/analysis/compare?entity=park&start=2026-03-02&end=2026-03-03&base=previous").json
    assert cmp["base_start"].startswith("2026-03-01T00:00:00")
    assert cmp["total"]["base"] == pytest.approx(expected["park"])
    assert cmp["total"]["change"] == pytest.approx(0.0, abs=1e-9)
    # 环比 of the first day: the day before has no data, so everything is new (no ratio from nothing)
    for by in ("carrier", "unit", "enterprise"):
        first = client.get(f"/api/v1/analysis/compare?entity=park&{DAY}&by={by}").json
        assert first["total"]["base"] == 0.0 and first["total"]["change"] == pytest.approx(expected["park"])
        assert all(r["change_ratio"] is None for r in first["rows"]), by
    pareto = client.get(f"/api/v1/analysis/pareto?entity=park&{DAY}&level=unit").json["rows"]
    by_unit = {"a-station": expected["A"], "b-line": expected["B"]}  # one unit per enterprise
    ranked = sorted(by_unit, key=by_unit.get, reverse=True)
    first_share = by_unit[ranked[0]] / expected["park"]
    assert [(r["unit_id"], r["key"]) for r in pareto] == [(ranked[0], True), (ranked[1], first_share < 0.8)]
    assert [r["value"] for r in pareto] == pytest.approx([by_unit[u] for u in ranked])
    assert pareto[0]["share"] == pytest.approx(first_share)
    cost = client.get(f"/api/v1/analysis/pareto?entity=park&{DAY}&level=unit&metric=cost").json["rows"]
    assert {r["unit_id"]: r["value"] for r in cost}["b-line"] == pytest.approx(19_200 * 0.65 + 7.2 * 240.0)


def test_bad_input_names_the_field(app, client):
    computed(app)
    cases = [
        ("/api/v1/analysis/structure?by=colour", 400, "by"),
        ("/api/v1/analysis/pareto?level=site", 400, "level"),
        ("/api/v1/analysis/pareto?metric=water", 400, "metric"),
        ("/api/v1/analysis/compare?base=lastweek&" + DAY, 400, "base"),
        ("/api/v1/analysis/trend?months=two", 400, "months"),
        ("/api/v1/analysis/cost?start=2020-01-01&end=2020-01-02", 404, "start"),  # before any data
        ("/api/v1/analysis/structure?start=2026-03-01T00:30:00&end=2026-03-02", 400, "start"),
    ]
    for url, status, field in cases:
        r = client.get(url)
        assert r.status_code == status, (url, r.json)
        assert r.json["error"]["field"] == field, url


def test_comparison_at_the_same_output(app, client):
    computed(app)
    rows = [{"enterprise": "B", "period_type": "day", "period_start": day, "product": "注塑件", "quantity": q,
             "product_unit": "t"} for day, q in (("2026-03-01", 100.0), ("2026-03-02", 120.0))]
    r = client.post("/api/v1/production", json={"rows": rows}, headers={"X-Lingtan-User": "erp-sync"})
    assert r.status_code == 201, r.json
    body = client.get("/api/v1/analysis/compare?entity=B&start=2026-03-02&end=2026-03-03&base=previous").json
    out = body["normalised"]["output"]
    energy = day_expectation(24.0)["B"]  # the same every day
    assert (out["product"], out["unit"], out["base_output"], out["current_output"]) == ("注塑件", "t", 100.0, 120.0)
    assert out["specific_current"] == pytest.approx(energy / 120.0)
    assert out["normalised_current"] == pytest.approx(energy * 100.0 / 120.0)
    assert out["normalised_change_ratio"] == pytest.approx(100.0 / 120.0 - 1.0)  # 16.7 % less energy per tonne
    assert body["normalised"]["weather"] is None and "no weather station" in body["normalised"]["weather_note"]
    park = client.get("/api/v1/analysis/compare?entity=park&start=2026-03-02&end=2026-03-03").json
    assert park["normalised"]["output"] is None and park["normalised"]["output_note"] == "no production records in both periods"


def test_products_against_their_limits(app, client):
    computed(app)
    energy = day_expectation(24.0)["B"]  # B's tce of a day, all of it for its one product
    clinker = energy * 1000.0 / 120.0  # the output that makes 120 kgce/t: over GB 16780-2021's 117
    rows = [{"enterprise": "B", "period_type": "day", "period_start": "2026-03-01", "product": "熟料",
             "quantity": clinker, "product_unit": "t"}]
    r = client.post("/api/v1/production", json={"rows": rows}, headers={"X-Lingtan-User": "erp-sync"})
    assert r.status_code == 201, r.json
    computed(app)  # the recalculation writes the per-product intensity
    body = client.get(f"/api/v1/analysis/benchmarks?entity=B&{DAY}").json
    (row,) = body["rows"]
    assert (row["product"], row["limit_id"], row["standard"]) == ("熟料", "gb16780-2021.clinker", "GB 16780-2021")
    assert row["specific"] == pytest.approx(120.0) and row["grade"] is None and row["compliant"] is False
    assert row["excess_tce"] == pytest.approx(3.0 * clinker / 1000.0)
    assert body["basis"] == "dangliang" and body["warning"] is None and body["unmatched"] == []
    park = client.get(f"/api/v1/analysis/benchmarks?entity=park&{DAY}&product=水泥熟料").json
    assert [r["entity"] for r in park["rows"]] == ["B"]  # the park: every enterprise's products
    bad = client.get(f"/api/v1/analysis/benchmarks?entity=B&{DAY}&product=注塑件").json["error"]
    assert (bad["status"], bad["code"], bad["field"]) == (400, "unknown_product", "product")
    assert "'注塑件' has no limit" in bad["message"] and "熟料" in bad["message"]
    none = client.get("/api/v1/analysis/benchmarks?entity=A&start=2026-03-01&end=2026-03-02").json["error"]
    assert (none["status"], none["code"]) == (404, "no_data")
    limits = client.get("/api/v1/analysis/limits").json["limits"]
    assert {"id": "gb16780-2021.clinker", "grade_3": 117.0, "standard": "GB 16780-2021"}.items() <= limits[0].items()
