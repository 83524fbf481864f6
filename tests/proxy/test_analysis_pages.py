"""The portal's analysis pages on the real calc-service behind the proxy (two accounted days of park ex2)."""

from __future__ import annotations

import html
import json
import re

import pytest

from tests.calc.test_engine_influx import day_expectation
from tests.proxy.conftest import BASE, login, make_user

RANGE = {"entity": "park", "start": "2026-03-01", "end": "2026-03-03"}


@pytest.fixture
def manager(app):
    acct = make_user(app, "analyst.page", ["energy_manager"], park_scope=True)
    c = app.test_client()
    login(c, acct)
    return c


def chart_of(page: str) -> dict:
    m = re.search(r"data-chart='([^']*)'", page)
    assert m, "no chart on the page"
    return json.loads(html.unescape(m.group(1)))


@pytest.mark.parametrize("topic", ["structure", "cost", "compare", "pareto", "balance", "efficiency"])
def test_every_topic_renders_in_both_languages(manager, topic):
    for lang, heading in (("zh", "能耗分析"), ("en", "Energy analysis")):
        r = manager.get(f"/analysis/{topic}", base_url=BASE, query_string={**RANGE, "lang": lang})
        assert r.status_code == 200
        page = r.get_data(as_text=True)
        assert f"<h1>{heading}" in page
        assert 'class="msg info"' not in page, page[page.find('class="msg info"'):][:300]  # no error notice
        assert "/help/" in page and "screens.html#analysis" in page


def test_structure_chart_and_table_hold_the_accounted_numbers(manager):
    page = manager.get("/analysis/structure", base_url=BASE, query_string={**RANGE, "by": "enterprise"}).get_data(as_text=True)
    chart = chart_of(page)
    expected = day_expectation(48.0)
    assert dict(zip(chart["labels"], chart["series"][0]["values"], strict=True)) == pytest.approx(
        {"A": expected["A"], "B": expected["B"]})
    assert f"{expected['park']:,.4f}" in page  # the total row


def test_cost_page_shows_the_bands(manager):
    page = manager.get("/analysis/cost", base_url=BASE, query_string=RANGE).get_data(as_text=True)
    for band in ("峰", "平", "谷"):
        assert f"<td>{band}</td>" in page
    # two days of 8,000 kWh in the valley at 0.26 CNY/kWh
    assert "4,160.00" in page


def test_trend_without_three_months_says_so(manager):
    page = manager.get("/analysis/trend", base_url=BASE, query_string={"entity": "park", "end": "2026-04-01",
                                                                       "months": "3"}).get_data(as_text=True)
    assert 'class="msg info"' in page and "at least 3 months" in page


def test_bad_choice_falls_back_to_the_default(manager):
    r = manager.get("/analysis/structure", base_url=BASE, query_string={**RANGE, "by": "<script>"})
    assert r.status_code == 200 and "<script>" not in r.get_data(as_text=True).split("<main", 1)[1]


def test_favicon_without_login(client):
    r = client.get("/favicon.ico", base_url=BASE)
    assert r.status_code == 200 and r.mimetype == "image/svg+xml" and b"<svg" in r.data


def test_recommendations_decided_in_the_portal_and_audited(app, manager):
    from tests.proxy.conftest import session_csrf, state_of

    csrf = session_csrf(manager)
    r = manager.post("/calc/api/v1/recommendations/evaluate", base_url=BASE, json={"end": "2026-03-03"},
                     headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.get_data(as_text=True)
    page = manager.get("/analysis/recommendations", base_url=BASE, query_string={"entity": "B"}).get_data(as_text=True)
    assert "夜间基荷偏高" in page and "B/b-line" in page
    row_id = int(re.search(r'id="rec-(\d+)"', page).group(1))
    r = manager.post(f"/analysis/recommendations/{row_id}/dismiss", base_url=BASE,
                     data={"csrf_token": csrf, "reason": ""})
    assert r.status_code == 302 and "error=" in r.headers["Location"]  # a dismissal states its reason
    r = manager.post(f"/analysis/recommendations/{row_id}/dismiss", base_url=BASE,
                     data={"csrf_token": csrf, "reason": "三班制生产线"}, follow_redirects=True)
    assert "已驳回该建议。" in r.get_data(as_text=True)
    dismissed = manager.get("/analysis/recommendations", base_url=BASE,
                            query_string={"entity": "B", "status": "dismissed"}).get_data(as_text=True)
    assert "三班制生产线" in dismissed
    st = state_of(app)
    with st.db() as s:
        from sqlalchemy import select

        from lingtan_proxy.models import AuditRecord

        actions = [(a.action, a.result) for a in s.scalars(select(AuditRecord).where(
            AuditRecord.action.in_(("recommendation.decide", "recommendation.evaluate"))))]
    assert ("recommendation.evaluate", "success") in actions
    assert actions.count(("recommendation.decide", "failure")) == 1 and ("recommendation.decide", "success") in actions


def test_enterprise_user_cannot_decide_for_another(app, manager):
    from tests.proxy.conftest import session_csrf

    manager.post("/calc/api/v1/recommendations/evaluate", base_url=BASE, json={"end": "2026-03-03"},
                 headers={"X-CSRF-Token": session_csrf(manager)})
    page = manager.get("/analysis/recommendations", base_url=BASE, query_string={"entity": "A"}).get_data(as_text=True)
    row_id = int(re.search(r'id="rec-(\d+)"', page).group(1))
    acct = make_user(app, "b.decider", ["enterprise_user"], enterprises=["B"])
    b = app.test_client()
    login(b, acct)
    csrf = session_csrf(b)
    assert b.post(f"/analysis/recommendations/{row_id}/acknowledge", base_url=BASE, data={"csrf_token": csrf}).status_code == 403
    r = b.post(f"/calc/api/v1/recommendations/{row_id}/acknowledge", base_url=BASE, json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403


def test_reports_generated_listed_and_downloaded_with_audit(app, manager):
    from sqlalchemy import select

    from lingtan_proxy.models import AuditRecord
    from tests.proxy.conftest import session_csrf, state_of

    csrf = session_csrf(manager)
    r = manager.post("/analysis/reports/generate", base_url=BASE, follow_redirects=True,
                     data={"csrf_token": csrf, "entity": "A", "kind": "day", "start": "2026-03-01", "lang": "zh"})
    page = r.get_data(as_text=True)
    assert "报表已生成。" in page and "2026-03-01" in page
    links = re.findall(r'href="(/calc/api/v1/reports/(\d+)/file)"', page)
    assert len(links) == 2  # XLSX and PDF
    got = manager.get(links[0][0], base_url=BASE)
    assert got.status_code == 200 and got.headers["X-Content-SHA256"]
    bad = manager.post("/analysis/reports/generate", base_url=BASE,
                       data={"csrf_token": csrf, "entity": "A", "kind": "month", "start": "2026-03-05", "lang": "zh"})
    assert "error=" in bad.headers["Location"]
    acct = make_user(app, "b.reader", ["enterprise_user"], enterprises=["B"])
    b = app.test_client()
    login(b, acct)
    assert b.get(links[0][0], base_url=BASE).status_code == 403  # A's report
    with state_of(app).db() as s:
        actions = [(a.action, a.result) for a in s.scalars(select(AuditRecord).where(
            AuditRecord.action.in_(("report.generate", "report.download"))))]
    assert ("report.generate", "success") in actions and ("report.generate", "failure") in actions
    assert ("report.download", "success") in actions


def test_compare_page_says_why_nothing_is_normalised(manager):
    query = {"entity": "park", "start": "2026-03-02", "end": "2026-03-03", "base": "previous"}
    page = manager.get("/analysis/compare", base_url=BASE, query_string=query).get_data(as_text=True)
    assert 'id="normalised"' in page and "按对比期气象折算" in page and "按对比期产量折算" in page
    assert "the park model names no weather station" in page  # park ex2 has none
    assert "no production records in both periods" in page
