"""The portal's budget page on the real calc-service behind the proxy: a plan set by one energy manager,
its dynamic re-spread proposed, approved by a second one (never by the first), all audited."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from lingtan_proxy.models import AuditRecord
from tests.proxy.conftest import BASE, login, make_user, session_csrf, state_of


def _page(client, **params) -> str:
    r = client.get("/budgets/", base_url=BASE, query_string={"entity": "B", "year": "2026", **params})
    assert r.status_code == 200
    return r.get_data(as_text=True)


def test_budget_page_four_eyes_and_both_languages(app):
    first, second, reader = app.test_client(), app.test_client(), app.test_client()
    login(first, make_user(app, "manager.one", ["energy_manager"], park_scope=True))
    login(second, make_user(app, "manager.two", ["energy_manager"], park_scope=True))
    login(reader, make_user(app, "b.reader", ["enterprise_user"], enterprises=["B"]))
    assert "本年度尚未编制预算。" in _page(first)
    r = first.post("/budgets/plan", base_url=BASE, data={
        "csrf_token": session_csrf(first), "entity": "B", "year": "2026", "kind": "energy", "annual": "-5",
        "rule": "days", "reason": "x"})
    assert "must be a positive number" in html.unescape(r.headers["Location"].replace("+", " "))
    r = first.post("/budgets/plan", base_url=BASE, data={
        "csrf_token": session_csrf(first), "entity": "B", "year": "2026", "kind": "energy", "annual": "900",
        "rule": "days", "reason": "2026 年节能目标责任书"})
    assert r.status_code == 302 and "done=plan" in r.headers["Location"]
    page = _page(first)
    assert "能耗预算 2026 · 版本 1" in page and "按天数" in page and "900.0" in page and "累计实际" in page
    plan_id = int(re.search(r'action="/budgets/(\d+)/respread"', page).group(1))
    assert "data-chart=" in page
    r = first.post(f"/budgets/{plan_id}/respread", base_url=BASE, data={
        "csrf_token": session_csrf(first), "entity": "B", "year": "2026", "reason": "剩余预算按月重新分配"})
    assert "done=propose" in r.headers["Location"]
    mine = _page(first)
    assert "本人提出，须由他人审批" in mine and "/approve" not in mine
    theirs = _page(second)
    proposal = int(re.search(r'action="/budgets/proposals/(\d+)/reject"', theirs).group(1))
    r = first.post(f"/budgets/proposals/{proposal}/approve", base_url=BASE,
                   data={"csrf_token": session_csrf(first), "entity": "B", "year": "2026"})
    assert "four-eyes" in html.unescape(r.headers["Location"].replace("+", " "))  # refused, even by hand
    r = second.post(f"/budgets/proposals/{proposal}/approve", base_url=BASE,
                    data={"csrf_token": session_csrf(second), "entity": "B", "year": "2026", "reason": "同意"})
    assert "done=approve" in r.headers["Location"]
    assert "能耗预算 2026 · 版本 2" in _page(second)
    english = _page(second, lang="en")
    assert "Energy budget 2026 · version 2" in english and "Remaining per day" in english
    # an enterprise user reads its budget, sets none and sees no proposals
    seen = _page(reader)
    assert "版本 2" in seen and "编制年度预算" not in seen and "待审批" not in seen
    assert reader.post("/budgets/plan", base_url=BASE, data={"csrf_token": session_csrf(reader)}).status_code == 403
    with state_of(app).db() as s:
        actions = [(a.action, a.username, a.result) for a in s.scalars(
            select(AuditRecord).where(AuditRecord.action.like("budget.%")).order_by(AuditRecord.seq))]
    assert actions == [("budget.plan", "manager.one", "failure"), ("budget.plan", "manager.one", "success"),
                       ("budget.propose", "manager.one", "success"), ("budget.decide", "manager.one", "failure"),
                       ("budget.decide", "manager.two", "success")]
