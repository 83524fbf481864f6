"""Daily and monthly reports: generated from the API's numbers, archived with their SHA-256, opened and checked.

The example park's two accounted days (1 and 2 March 2026). The XLSX is opened with openpyxl and
its numbers compared with the API; the PDF is rendered to a PNG with pdfium, and each distinct
Chinese character of its title is drawn as a distinct glyph (a missing font draws every one as
the same empty box).
"""

from __future__ import annotations

import hashlib
import io

import openpyxl
import pypdfium2 as pdfium
import pytest

from lingtan_calc.service.app import service_of
from tests.calc.test_api import computed
from tests.calc.test_engine_influx import day_expectation


def make(client, **body):
    r = client.post("/api/v1/reports", json={"entity": "park", "kind": "day", "start": "2026-03-01", **body},
                    headers={"X-Lingtan-User": "energy.manager"})
    assert r.status_code == 201, r.json
    return {row["format"]: row for row in r.json["rows"]}


def download(client, row) -> bytes:
    r = client.get(row["file"])
    assert r.status_code == 200
    assert r.headers["X-Content-SHA256"] == row["sha256"] == hashlib.sha256(r.data).hexdigest()
    return r.data


def test_daily_xlsx_holds_the_api_numbers(app, client):
    computed(app)
    rows = make(client)
    wb = openpyxl.load_workbook(io.BytesIO(download(client, rows["xlsx"])), data_only=True)
    assert wb.sheetnames[:5] == ["概要", "能源", "碳排放", "成本", "对比"]
    summary = {r[0]: r[1] for r in wb["概要"].iter_rows(values_only=True) if r and r[0]}
    assert summary["综合能耗"] == pytest.approx(day_expectation(24.0)["park"])
    energy_api = client.get("/api/v1/energy?entity=park&period=day&start=2026-03-01&end=2026-03-02").json["rows"][0]
    assert summary["综合能耗"] == pytest.approx(energy_api["comprehensive_tce"])
    carbon_api = client.get("/api/v1/carbon?entity=park&period=day&start=2026-03-01&end=2026-03-02").json["rows"][0]
    assert summary["总排放（基于位置）"] == pytest.approx(carbon_api["total_tco2"])
    cost_api = client.get("/api/v1/analysis/cost?entity=park&start=2026-03-01&end=2026-03-02").json
    assert summary["能源费用合计"] == pytest.approx(cost_api["total_cost"])
    carriers = {r[0]: r for r in wb["能源"].iter_rows(min_row=2, values_only=True) if r and r[0]}
    assert carriers["电力"][1] == pytest.approx(24_000 + 4_800 - 1_200) and carriers["电力"][2] == "kWh"
    assert wb["能源"]._charts, "a native bar chart of the energy by carrier"
    bands = {(r[0], r[1]): r for r in wb["成本"].iter_rows(values_only=True) if r and r[0] == "电力" and r[1] in ("峰", "平", "谷")}
    assert bands[("电力", "谷")][4] == pytest.approx(8_000 * 0.26)
    quality = {r[0]: r[1] for r in wb["数据质量"].iter_rows(values_only=True) if r and r[0]}
    assert quality["已核算小时数"] == 24 and quality["核算覆盖率"] == pytest.approx(1.0)
    factors = [r[0] for r in wb["所用因子及来源"].iter_rows(min_row=2, values_only=True) if r and r[0]]
    assert "mee.grid.2023.east_china.average" in factors


def test_pdf_renders_chinese_glyphs(app, client, tmp_path):
    computed(app)
    pdf = pdfium.PdfDocument(download(client, make(client, formats=["pdf"])["pdf"]))
    page = pdf[0]
    text = page.get_textpage()
    title = "能源与碳排放日报"
    whole = text.get_text_range()
    assert title in whole and "综合能耗" in whole
    bitmap = page.render(scale=3).to_pil()
    bitmap.save(tmp_path / "report-page-1.png")  # for a person to look at
    at = whole.index(title)
    glyphs = {}
    for i, ch in enumerate(title):
        left, bottom, right, top = text.get_charbox(at + i)
        box = (int(left * 3), int((page.get_height() - top) * 3), int(right * 3), int((page.get_height() - bottom) * 3))
        glyphs[ch] = bitmap.crop(box).convert("L").resize((24, 24)).tobytes()
    assert all(sum(255 - b for b in g) > 0 for g in glyphs.values()), "every glyph draws ink"
    assert len(set(glyphs.values())) == len(set(title)), "distinct characters draw distinct glyphs, not boxes"


def test_regenerated_report_supersedes_and_keeps_the_old(app, client):
    computed(app)
    first = make(client, formats=["xlsx"])["xlsx"]
    second = make(client, formats=["xlsx"])["xlsx"]
    listed = client.get("/api/v1/reports?entity=park").json["rows"]
    assert [r["id"] for r in listed] == [second["id"]]
    everything = client.get("/api/v1/reports?entity=park&all=1").json["rows"]
    assert {r["id"]: r["superseded_by"] for r in everything} == {first["id"]: second["id"], second["id"]: None}
    download(client, first)  # the superseded file is still there, and still matches its hash
    # a recalculation of the day generates it again
    svc = service_of(app)
    job = svc.submit(*[__import__("pandas").Timestamp(t, tz="Asia/Shanghai") for t in ("2026-03-01", "2026-03-02")],
                     "meter corrected", "pytest")
    svc._queue.clear()
    svc.run_job(job)
    (latest,) = client.get("/api/v1/reports?entity=park").json["rows"]
    assert latest["id"] != second["id"] and latest["reason"] == "recalculated: meter corrected"


def test_monthly_english_report(app, client):
    computed(app)
    rows = make(client, kind="month", start="2026-03-01", lang="en", entity="B", formats=["xlsx"])
    wb = openpyxl.load_workbook(io.BytesIO(download(client, rows["xlsx"])), data_only=True)
    assert wb.sheetnames[0] == "Summary"
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["Period"] == "2026-03"
    assert summary["Comprehensive energy consumption"] == pytest.approx(2 * day_expectation(24.0)["B"])


def test_bad_requests_name_the_field(app, client):
    computed(app)
    cases = [({"start": "2020-01-01"}, 404, "start"), ({"kind": "month", "start": "2026-03-02"}, 400, "start"),
             ({"kind": "week"}, 400, "kind"), ({"lang": "fr"}, 400, "lang"), ({"formats": ["docx"]}, 400, "format"),
             ({"entity": "nobody"}, 404, "entity"), ({"start": "soon"}, 400, "start")]
    for body, status, field in cases:
        r = client.post("/api/v1/reports", json={"entity": "park", "kind": "day", "start": "2026-03-01", **body})
        assert r.status_code == status, (body, r.json)
        assert r.json["error"]["field"] == field, body
    assert client.get("/api/v1/reports/999/file").status_code == 404


def test_scheduled_reports_catch_up_once(app, client):
    import pandas as pd

    from lingtan_calc.service import reports

    computed(app)
    svc = service_of(app)
    now = pd.Timestamp("2026-03-03 00:20", tz="Asia/Shanghai")
    written = reports.scheduled(svc, now)
    listed = client.get("/api/v1/reports?entity=B&kind=day").json["rows"]
    # the two days with data, for the park, A and B, as XLSX and PDF; February and 2025 have none
    assert written == 2 * 3 * 2 and sorted({r["period"] for r in listed}) == ["2026-03-01", "2026-03-02"]
    assert {r["reason"] for r in listed} == {"schedule"}
    assert reports.scheduled(svc, now) == 0  # already written: nothing again
