"""单位产品能源消耗限额 through the proxy: production imported in the portal's scope, the page, the read API.

A module of its own: it adds a production record to the module's calc-service and recalculates.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.calc.test_engine_influx import HOURS, START, day_expectation
from tests.proxy.conftest import BASE, login, make_user, session_csrf
from tests.proxy.test_analysis_pages import chart_of

DAY = {"start": "2026-03-01", "end": "2026-03-02"}


@pytest.fixture
def manager(app, calc_upstream):
    acct = make_user(app, "limits.manager", ["energy_manager"], park_scope=True)
    c = app.test_client()
    login(c, acct)
    energy = day_expectation(24.0)["B"]
    row = {"enterprise": "B", "period_type": "day", "period_start": "2026-03-01", "product": "熟料",
           "quantity": energy * 1000.0 / 104.0, "product_unit": "t"}  # 104 kgce/t: grade 2 of GB 16780-2021
    r = c.post("/calc/api/v1/production", base_url=BASE, json={"rows": [row]},
               headers={"X-CSRF-Token": session_csrf(c)})
    assert r.status_code == 201, r.json
    svc = calc_upstream.service
    job = svc.submit(START, START + pd.Timedelta(hours=HOURS), "test", "pytest")
    svc._queue.clear()
    svc.run_job(job)
    assert job.state == "done", job.error
    return c


def test_benchmarks_page_in_both_languages(manager):
    for lang, grade, heading in (("zh", "2级", "能耗限额对标"), ("en", "Grade 2", "Consumption limits")):
        page = manager.get("/analysis/benchmarks", base_url=BASE,
                           query_string={"entity": "B", **DAY, "lang": lang}).get_data(as_text=True)
        assert heading in page and 'class="msg info"' not in page
        assert "GB 16780-2021" in page and f"<td>{grade}</td>" in page and "104.0" in page
    chart = chart_of(page)
    assert chart["labels"] == ["B / 熟料"] and chart["series"][0]["values"] == pytest.approx([104.0])
    assert chart["series"][1]["values"] == [117.0]


def test_benchmarks_on_the_read_api(manager):
    body = manager.get("/api/v1/analysis/benchmarks", base_url=BASE, query_string={"entity": "park", **DAY}).json
    (row,) = body["rows"]
    assert (row["entity"], row["grade"], row["compliant"]) == ("B", 2, True)
    csv = manager.get("/api/v1/analysis/benchmarks", base_url=BASE,
                      query_string={"entity": "B", **DAY, "format": "csv"}).get_data(as_text=True)
    assert csv.splitlines()[0].lstrip("\ufeff").startswith("entity,product,limit_id")  # BOM for Excel and "gb16780-2021.clinker" in csv
    err = manager.get("/api/v1/analysis/benchmarks", base_url=BASE,
                      query_string={"entity": "B", **DAY, "product": "月饼"}).json["error"]
    assert (err["status"], err["field"]) == (400, "product") and "'月饼' has no limit" in err["message"]
    limits = manager.get("/calc/api/v1/analysis/limits", base_url=BASE).json["limits"]
    assert len(limits) >= 5 and all(lim["standard"] and lim["confidence"] for lim in limits)
