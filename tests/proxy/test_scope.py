"""Data scope, route by route: a user of enterprise B never reads A's data, whatever the route.

The calc-service behind the proxy is real and holds two accounted days of both enterprises.
"""

from __future__ import annotations

import io
import json

import pytest

from tests.calc.test_engine_influx import START
from tests.proxy.conftest import BASE, login, make_user, session_csrf

DAY = {"period": "day", "start": str(START.date()), "end": "2026-03-03"}


@pytest.fixture
def b_user(app):
    acct = make_user(app, "b.user", ["enterprise_user"], enterprises=["B"])
    c = app.test_client()
    login(c, acct)
    return c


@pytest.fixture
def manager(app):
    acct = make_user(app, "manager", ["energy_manager"], park_scope=True)
    c = app.test_client()
    login(c, acct)
    return c


READ_ROUTES = [
    ("/api/v1/energy", DAY), ("/api/v1/energy", {**DAY, "by": "carrier"}), ("/api/v1/carbon", DAY),
    ("/api/v1/carbon", {**DAY, "by": "meter"}), ("/api/v1/intensity", {"period": "month"}),
    ("/api/v1/realtime", {}), ("/api/v1/overview", {}), ("/api/v1/energy", {**DAY, "format": "csv"}),
    ("/calc/api/v1/energy", DAY), ("/calc/api/v1/carbon", DAY), ("/calc/api/v1/intensities", {}),
    ("/api/v1/analysis/structure", DAY), ("/api/v1/analysis/cost", DAY), ("/api/v1/analysis/pareto", DAY),
    ("/calc/api/v1/analysis/compare", DAY), ("/api/v1/analysis/structure", {**DAY, "format": "csv"}),
]


@pytest.mark.parametrize(("path", "params"), READ_ROUTES)
def test_own_enterprise_readable_other_not(b_user, path, params):
    own = b_user.get(path, base_url=BASE, query_string={**params, "entity": "B"})
    assert own.status_code == 200, own.get_data(as_text=True)
    for other in ("A", "park"):
        r = b_user.get(path, base_url=BASE, query_string={**params, "entity": other})
        assert r.status_code == 403, (path, other, r.status_code)
        assert r.json["error"]["code"] == "forbidden"
    # no entity parameter means the park: refused too
    assert b_user.get(path, base_url=BASE, query_string=params).status_code == 403


def test_own_rows_are_real_data(b_user):
    body = b_user.get("/api/v1/energy", base_url=BASE, query_string={**DAY, "entity": "B"}).json
    assert body["entity"] == "B" and len(body["rows"]) == 2
    assert all(r["comprehensive_tce"] > 0 for r in body["rows"])


def test_entity_lists_are_filtered(b_user, manager):
    for path in ("/api/v1/entities", "/calc/api/v1/entities"):
        assert [e["id"] for e in b_user.get(path, base_url=BASE).json] == ["B"]
        assert [e["id"] for e in manager.get(path, base_url=BASE).json] == ["park", "A", "B"]


def test_park_wide_routes_need_park_scope(b_user, manager):
    assert b_user.get("/calc/api/v1/flows", base_url=BASE, query_string=DAY).status_code == 403
    assert manager.get("/calc/api/v1/flows", base_url=BASE, query_string=DAY).status_code == 200
    r = b_user.post("/calc/api/v1/recalc", base_url=BASE, json={"start": "2026-03-01", "end": "2026-03-02",
                                                                "reason": "x"},
                    headers={"X-CSRF-Token": session_csrf(b_user)})
    assert r.status_code == 403


def test_imports_only_for_own_enterprise(b_user):
    csrf = session_csrf(b_user)
    row = {"period_type": "month", "period_start": "2026-03-01", "unit": "a-station", "product": "电", "quantity": 1,
           "quantity_unit": "MWh"}
    r = b_user.post("/calc/api/v1/production", base_url=BASE, json={"rows": [{**row, "enterprise": "A"}]},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and "A" in r.json["error"]["message"]
    csv = "enterprise,period_type,period_start,unit,product,quantity,quantity_unit\nA,month,2026-03-01,a-station,电,1,MWh\n"
    r = b_user.post("/calc/api/v1/production/import", base_url=BASE, headers={"X-CSRF-Token": csrf},
                    data={"file": (io.BytesIO(csv.encode()), "p.csv")}, content_type="multipart/form-data")
    assert r.status_code == 403


def test_analysis_pages_only_for_own_entities(b_user):
    query = {"start": str(START.date()), "end": "2026-03-03"}
    own = b_user.get("/analysis/structure", base_url=BASE, query_string={**query, "entity": "B"})
    assert own.status_code == 200 and 'data-chart=' in own.get_data(as_text=True)
    for other in ("A", "park"):
        assert b_user.get("/analysis/structure", base_url=BASE, query_string={**query, "entity": other}).status_code == 403


def test_overview_page_only_offers_own_entities(b_user):
    html = b_user.get("/overview", base_url=BASE).get_data(as_text=True)
    assert 'value="B"' in html and 'value="A"' not in html
    assert b_user.get("/overview?entity=A", base_url=BASE).status_code == 403


def test_unknown_calc_routes_are_404_and_paths_checked(manager):
    assert manager.get("/calc/api/v1/../../etc/passwd", base_url=BASE).status_code in (400, 404)
    assert manager.get("/calc/api/v1/%2e%2e/health", base_url=BASE).status_code in (400, 404)
    assert manager.get("/calc/internal/anything", base_url=BASE).status_code == 404
    assert manager.delete("/calc/api/v1/factors", base_url=BASE,
                          headers={"X-CSRF-Token": session_csrf(manager)}).status_code == 404


def test_operator_cannot_write(app):
    acct = make_user(app, "op", ["operator"], park_scope=True)
    c = app.test_client()
    login(c, acct)
    r = c.post("/calc/api/v1/factors", base_url=BASE, headers={"X-CSRF-Token": session_csrf(c)},
               data=json.dumps({}), content_type="application/json")
    assert r.status_code == 403
    for page in ("/admin/users", "/admin/roles", "/audit", "/audit/export.csv"):
        assert c.get(page, base_url=BASE).status_code == 403, page


def test_weather_is_read_by_all_and_imported_park_wide(b_user, manager):
    # the example park names no weather station: the calc-service's answer comes through the proxy
    r = b_user.get("/calc/api/v1/weather", base_url=BASE)
    assert r.status_code == 404 and r.json["error"]["code"] == "no_weather_station"
    row = {"station": "wx1", "time": "2026-03-01T00:00", "air_temperature": 5.0}
    r = b_user.post("/calc/api/v1/weather", base_url=BASE, json={"rows": [row]},
                    headers={"X-CSRF-Token": session_csrf(b_user)})
    assert r.status_code == 403  # an enterprise user does not import the park's weather
    r = manager.post("/calc/api/v1/weather", base_url=BASE, json={"rows": [row]},
                     headers={"X-CSRF-Token": session_csrf(manager)})
    assert r.status_code == 404 and r.json["error"]["code"] == "no_weather_station"


def test_forecasts_are_read_per_entity_and_issued_park_wide(b_user, manager):
    # an enterprise user reads its own forecast (none issued yet: empty models), not another's
    r = b_user.get("/calc/api/v1/forecast?entity=B", base_url=BASE)
    assert r.status_code == 200 and r.json["entity"] == "B" and r.json["models"] == {}
    assert b_user.get("/calc/api/v1/forecast?entity=A", base_url=BASE).status_code == 403
    assert b_user.get("/calc/api/v1/forecast/generation", base_url=BASE).status_code == 403
    r = b_user.post("/calc/api/v1/forecast/backtest", base_url=BASE, json={"entity": "A", "days": 7},
                    headers={"X-CSRF-Token": session_csrf(b_user)})
    assert r.status_code == 403
    r = b_user.post("/calc/api/v1/forecast/issue", base_url=BASE, json={},
                    headers={"X-CSRF-Token": session_csrf(b_user)})
    assert r.status_code == 403  # issuing is the park's
    r = manager.post("/calc/api/v1/forecast/backtest", base_url=BASE, json={"entity": "B", "days": 7},
                     headers={"X-CSRF-Token": session_csrf(manager)})
    assert r.status_code == 422 and r.json["error"]["code"] == "no_history"


def test_budgets_are_set_per_entity_and_changed_by_two_people(app, b_user, manager):
    from sqlalchemy import select

    from lingtan_proxy.models import AuditRecord
    from tests.proxy.conftest import state_of

    plan = {"entity": "B", "year": 2026, "kind": "energy", "annual": 800.0, "rule": "equal", "reason": "目标责任书"}
    r = b_user.post("/calc/api/v1/budgets", base_url=BASE, json=plan, headers={"X-CSRF-Token": session_csrf(b_user)})
    assert r.status_code == 403  # an enterprise user reads budgets, does not set them
    r = manager.post("/calc/api/v1/budgets", base_url=BASE, json=plan, headers={"X-CSRF-Token": session_csrf(manager)})
    assert r.status_code == 201 and r.json["plan"]["author"] == "manager"  # the author is the proxy's user
    assert b_user.get("/calc/api/v1/budgets?entity=B&year=2026", base_url=BASE).json["budgets"][0]["plan"]["annual"] \
        == 800.0
    assert b_user.get("/calc/api/v1/budgets?entity=A", base_url=BASE).status_code == 403
    assert b_user.get("/calc/api/v1/budgets/proposals", base_url=BASE).status_code == 403
    change = {"year": 2026, "kind": "energy", "reason": "检修", "changes": [
        {"plan_id": r.json["plan"]["id"], "monthly": [50.0] * 6 + [500 / 6] * 6}]}
    pid = manager.post("/calc/api/v1/budgets/proposals", base_url=BASE, json=change,
                       headers={"X-CSRF-Token": session_csrf(manager)}).json["id"]
    own = manager.post(f"/calc/api/v1/budgets/proposals/{pid}/approve", base_url=BASE, json={},
                       headers={"X-CSRF-Token": session_csrf(manager)})
    assert own.status_code == 409 and "four-eyes" in own.json["error"]["message"]
    second = app.test_client()
    login(second, make_user(app, "manager2", ["energy_manager"], park_scope=True))
    ok = second.post(f"/calc/api/v1/budgets/proposals/{pid}/approve", base_url=BASE, json={},
                     headers={"X-CSRF-Token": session_csrf(second)})
    assert ok.status_code == 200 and ok.json["decided_by"] == "manager2"
    assert b_user.get("/calc/api/v1/warnings?entity=B", base_url=BASE).json["warnings"] == []
    with state_of(app).db() as s:
        actions = [(a.action, a.username, a.result) for a in s.scalars(select(AuditRecord).where(
            AuditRecord.action.like("budget.%")))]
    assert actions == [("budget.plan", "manager", "success"), ("budget.propose", "manager", "success"),
                       ("budget.decide", "manager", "failure"), ("budget.decide", "manager2", "success")]
