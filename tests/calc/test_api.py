"""The calc-service API against a live InfluxDB and a real SQLite database."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from lingtan_calc.service.app import service_of
from tests.calc.test_engine_influx import HOURS, START, day_expectation

EXAMPLES = Path(__file__).parent / "examples"


def computed(app):
    """Recalculate the two test days (as a job, the way the API does)."""
    svc = service_of(app)
    job = svc.submit(START, START + pd.Timedelta(hours=HOURS), "test", "pytest")
    svc._queue.clear()
    svc.run_job(job)
    assert job.state == "done", job.error
    return job


def test_energy_and_carbon_for_every_entity(app, client):
    computed(app)
    for entity, tce in day_expectation(24.0).items():
        r = client.get(f"/api/v1/energy?entity={entity}&period=day&start=2026-03-01&end=2026-03-03")
        assert r.status_code == 200, r.json
        body = r.json
        assert body["units"]["comprehensive_tce"] == "tce"
        assert [row["comprehensive_tce"] for row in body["rows"]] == pytest.approx([tce, tce], rel=1e-9)
        assert body["rows"][0]["period_start"] == "2026-03-01T00:00:00+08:00"
        c = client.get(f"/api/v1/carbon?entity={entity}&period=month&start=2026-03-01&end=2026-04-01").json
        assert len(c["rows"]) == 1 and c["rows"][0]["total_tco2"] > 0
    src = client.get("/api/v1/carbon?entity=park&period=day&start=2026-03-01&end=2026-03-02&by=source").json
    cats = {(r["category"], r["carrier"]): r for r in src["rows"]}
    assert set(cats) == {("purchased_electricity", "electricity"), ("exported_electricity", "electricity"),
                         ("purchased_heat", "steam")}
    assert cats[("purchased_electricity", "electricity")]["factors"] == "mee.grid.2023.east_china.average"
    carriers = client.get("/api/v1/energy?entity=B&period=day&start=2026-03-01&end=2026-03-02&by=carrier").json
    assert {(r["carrier"], r["unit"]) for r in carriers["rows"]} == {("electricity", "kWh"), ("steam", "t")}


def test_errors_share_one_json_format(client):
    r = client.get("/api/v1/energy?entity=nobody")
    assert r.status_code == 404
    assert r.json["error"]["code"] == "unknown_entity" and r.json["error"]["field"] == "entity"
    r = client.get("/api/v1/energy?period=week")
    assert r.status_code == 400 and r.json["error"]["field"] == "period"
    r = client.get("/api/v1/energy?start=yesterday-ish")
    assert r.status_code == 400 and "yesterday-ish" in r.json["error"]["message"]
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json["error"]["status"] == 404


def test_factor_override_is_recorded_and_recalculates(app, client):
    computed(app)
    factor = {"id": "park.grid.green-tariff", "kind": "grid_emission_factor", "subject": "electricity",
              "basis": "average", "region": "east_china", "value": 0.45, "unit": "tCO2/MWh",
              "valid_from": "2026-03-02", "source": {"document": "省级电力排放因子 (test)", "edition": "2026"},
              "confidence": "test", "reason": "a provincial factor for March 2026"}
    r = client.post("/api/v1/factors", json=factor, headers={"X-Lingtan-User": "energy.manager"})
    assert r.status_code == 201, r.json
    job = r.json["recalculation"]
    assert job["start"].startswith("2026-03-02T00:00") and "a provincial factor" in job["reason"]
    svc = service_of(app)
    queued = svc._queue.popleft()
    svc.run_job(queued)
    assert queued.state == "done"
    hist = client.get("/api/v1/factors/history").json
    assert any(h["factor_id"] == "park.grid.green-tariff" and h["author"] == "energy.manager" for h in hist)
    src = client.get("/api/v1/carbon?entity=park&period=day&start=2026-03-01&end=2026-03-03&by=source").json
    elec = {r["period_start"][:10]: r["factors"] for r in src["rows"] if r["category"] == "purchased_electricity"}
    assert elec == {"2026-03-01": "mee.grid.2023.east_china.average", "2026-03-02": "park.grid.green-tariff"}
    # a missing source is refused with the field named
    bad = {**factor, "id": "park.x", "source": {"document": ""}}
    r = client.post("/api/v1/factors", json=bad)
    assert r.status_code == 400 and r.json["error"]["field"].startswith("source")


def test_production_import_csv_and_xlsx_all_or_nothing(app, client):
    csv_ok = ("enterprise,period_type,period_start,product,quantity,product_unit,output_value,value_added\n"
              "B,month,2026-03-01,注塑件,1000,t,5000,1200\n").encode()
    r = client.post("/api/v1/production/import", data={"file": (io.BytesIO(csv_ok), "march.csv")},
                    content_type="multipart/form-data", headers={"X-Lingtan-User": "erp-sync"})
    assert r.status_code == 201 and r.json["accepted"] and r.json["rows"] == 1
    bad = ("enterprise,period_type,period_start,product,quantity,product_unit\n"
           "B,month,2026-03-01,注塑件,12x,t\nZ,month,2026-03-01,x,1,t\nB,month,2026-03-15,y,1,t\n").encode()
    r = client.post("/api/v1/production/import", data={"file": (io.BytesIO(bad), "bad.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 422
    errs = r.json["errors"]
    assert errs[0] == "bad.csv: row 1: quantity '12x' is not a number"
    assert "row 2: enterprise 'Z'" in errs[1] and "row 3: period_start 2026-03-15 is not the first day" in errs[2]
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["enterprise", "period_type", "period_start", "output_value", "value_added"])
    ws.append(["A", "month", "2026-03-01", 800, 300])
    buf = io.BytesIO()
    wb.save(buf)
    r = client.post("/api/v1/production/import", data={"file": (io.BytesIO(buf.getvalue()), "a.xlsx")},
                    content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    computed(app)
    ints = client.get("/api/v1/intensities?entity=B&period=month&start=2026-03-01&end=2026-04-01").json["rows"]
    by = {r["indicator"]: r for r in ints}
    month_tce = day_expectation(48.0)["B"]
    assert by["energy_per_output_value"]["value"] == pytest.approx(month_tce / 5000, rel=1e-9)
    assert by["energy_per_product"]["value"] == pytest.approx(month_tce / 1000, rel=1e-9)
    park = client.get("/api/v1/intensities?entity=park&period=month&start=2026-03-01&end=2026-04-01").json["rows"]
    assert {r["indicator"] for r in park} >= {"energy_per_output_value", "energy_per_value_added"}


def test_evaluate_and_openapi(client):
    import yaml

    inv = json.loads(json.dumps(yaml.safe_load((EXAMPLES / "single_fuel.yaml").read_text()), default=str))
    r = client.post("/api/v1/accounting/evaluate", json=inv)
    assert r.status_code == 200
    assert r.json["totals"][0]["comprehensive_tce"] == pytest.approx(1214.3)
    r = client.post("/api/v1/accounting/evaluate", json={"period_start": "2026-01-01"})
    assert r.status_code == 400 and "enterprises" in r.json["error"]["message"]
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    text = json.dumps(spec)
    for ref in set(__import__("re").findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in spec["components"]["schemas"], ref
    for path in ("/api/v1/energy", "/api/v1/carbon", "/api/v1/intensities", "/api/v1/factors", "/api/v1/recalc",
                 "/api/v1/accounting/evaluate", "/api/v1/production/import"):
        assert path in spec["paths"]
    # every route of the service is documented (the two other imports share production's form)
    shape = lambda p: re.sub(r"\{[^}]+\}", "{}", p)  # noqa: E731
    documented = {shape(p) for p in spec["paths"]} | {"/api/v1/process/import", "/api/v1/green/import",
                                                      "/api/v1/openapi.json"}
    for rule in client.application.url_map.iter_rules():
        choice = re.search(r"<any\(([^)]*)\):\w+>", str(rule.rule))
        for option in choice.group(1).split(",") if choice else [""]:
            full = re.sub(r"<any\([^)]*\):\w+>", option.strip(), str(rule.rule)) if choice else str(rule.rule)
            full = re.sub(r"<(?:\w+:)?\w+>", "{}", full)
            if full.startswith("/api/"):  # a choice is documented expanded, or as a path parameter
                assert full in documented or re.sub(r"<[^>]+>", "{}", str(rule.rule)) in documented, full


def test_scheduled_cycle_writes_the_current_hour(app, client):
    svc = service_of(app)
    runs = svc.cycle(now=START + pd.Timedelta(hours=30, minutes=5))
    assert {r.period for r in runs} == {"hour", "day", "month", "year"}
    rows = client.get("/api/v1/energy?entity=park&period=hour&start=2026-03-02T05:00&end=2026-03-02T07:00").json["rows"]
    assert [r["period_start"] for r in rows] == ["2026-03-02T05:00:00+08:00", "2026-03-02T06:00:00+08:00"]
    assert client.get("/api/v1/health").json["last_cycle"]["runs"] == len(runs)


def test_recalculation_scoped_to_one_enterprise(app, client):
    r = client.post("/api/v1/recalc", json={"start": "2026-03-01", "end": "2026-03-02", "reason": "B's ERP data fixed",
                                            "scope": "B"}, headers={"X-Lingtan-User": "analyst"})
    assert r.status_code == 202 and r.json["scope"] == "B" and r.json["author"] == "analyst"
    svc = service_of(app)
    svc.run_job(svc._queue.popleft())
    assert client.get("/api/v1/energy?entity=B&period=day&start=2026-03-01&end=2026-03-02").json["rows"]
    assert client.get("/api/v1/energy?entity=A&period=day&start=2026-03-01&end=2026-03-02").json["rows"] == []
    bad = client.post("/api/v1/recalc", json={"start": "2026-03-01", "end": "2026-03-02", "reason": "x",
                                              "scope": "nobody"})
    assert bad.status_code == 400 and "scope 'nobody'" in bad.json["error"]["message"]
    assert client.post("/api/v1/recalc", json={"start": "2026-03-01", "end": "2026-03-02"}).json["error"]["field"] \
        == "reason"


def test_process_and_green_data_enter_the_month(app, client):
    r = client.post("/api/v1/process", json={"rows": [
        {"enterprise": "B", "period_type": "month", "period_start": "2026-03-01", "material": "CaCO3",
         "quantity": 100, "fraction": 0.98}]}, headers={"X-Lingtan-User": "process-engineer"})
    assert r.status_code == 201, r.json
    r = client.post("/api/v1/green", json={"rows": [
        {"enterprise": "B", "period_type": "month", "period_start": "2026-03-01", "instrument": "gec",
         "reference": "GEC-2026-000123..000132", "certificates": 10}]})
    assert r.status_code == 201, r.json
    bad = client.post("/api/v1/process", json={"rows": [
        {"enterprise": "B", "period_start": "2026-03-01", "material": "unobtainium", "quantity": 1}]})
    assert bad.status_code == 422 and "material 'unobtainium' has no process emission factor" in bad.json["errors"][0]
    computed(app)
    month = client.get("/api/v1/carbon?entity=B&period=month&start=2026-03-01&end=2026-04-01").json["rows"][0]
    days = client.get("/api/v1/carbon?entity=B&period=day&start=2026-03-01&end=2026-03-03").json["rows"]
    days_scope1 = sum(d["scope1_tco2"] for d in days)
    assert month["scope1_tco2"] - days_scope1 == pytest.approx(100 * 0.98 * 0.4397, rel=1e-9)  # process CO2
    assert month["green_kwh"] == 10_000.0
    residual = 0.6096 / 1000  # tCO2 per kWh
    assert sum(d["scope2_market_tco2"] for d in days) - month["scope2_market_tco2"] == pytest.approx(
        10_000 * residual, rel=1e-9)
    src = client.get("/api/v1/carbon?entity=B&period=month&start=2026-03-01&end=2026-04-01&by=source").json["rows"]
    assert any(r["category"] == "process" and r["factors"] == "process.caco3" for r in src)


def test_internal_errors_show_an_id_not_the_exception(app, caplog):
    import logging

    def boom():
        raise KeyError("influx password s3cret")

    app.add_url_rule("/api/v1/boom", "boom", boom)
    with caplog.at_level(logging.ERROR):
        r = app.test_client().get("/api/v1/boom")
    assert r.status_code == 500 and r.json["error"]["code"] == "internal_error"
    assert "s3cret" not in r.get_data(as_text=True) and r.json["error"]["id"] in caplog.text
    assert "s3cret" in caplog.text
