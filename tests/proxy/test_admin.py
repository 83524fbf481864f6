"""User, role and audit administration over HTTP: separation of duties, no self-escalation, every change audited."""

from __future__ import annotations

from lingtan_proxy import audit
from lingtan_proxy.identity import find_user
from lingtan_proxy.models import Role
from tests.proxy.conftest import BASE, csrf_from, login, make_user, session_csrf, state_of


def logged_in(app, name, roles, **kw):
    acct = make_user(app, name, roles, **kw)
    c = app.test_client()
    assert login(c, acct).status_code == 302
    return c


def user_id(app, name) -> int:
    st = state_of(app)
    with st.db() as s:
        return find_user(s, name).id


def audited(app, action: str) -> list:
    st = state_of(app)
    with st.db() as s:
        return audit.query(s, audit.AuditFilter(action=action), limit=100)[1]


def test_security_admin_creates_user_with_one_time_password(app):
    sec = logged_in(app, "sec", ["security_admin"])
    page = sec.get("/admin/users/new", base_url=BASE)
    r = sec.post("/admin/users/new", base_url=BASE, data={
        "username": "New.User", "display_name": "张三", "roles": ["enterprise_user"], "enterprises": ["B"],
        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "new.user" in html
    rec = audited(app, "user.create")[0]
    assert rec.username == "sec" and rec.object == "new.user" and '"enterprises":["B"]' in rec.detail


def test_separation_of_duties_over_http(app):
    sec = logged_in(app, "sec2", ["security_admin"])
    make_user(app, "target", ["operator"], totp=False)
    uid = user_id(app, "target")
    page = sec.get(f"/admin/users/{uid}", base_url=BASE)
    r = sec.post(f"/admin/users/{uid}", base_url=BASE, data={
        "roles": ["audit_admin", "security_admin"], "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 400 and "separation of duties" in r.get_data(as_text=True)
    page = sec.get("/admin/roles/new", base_url=BASE)
    r = sec.post("/admin/roles/new", base_url=BASE, data={
        "name": "superuser", "permissions": ["audit.archive", "user.manage"], "grafana_role": "None",
        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 400
    st = state_of(app)
    with st.db() as s:
        assert s.query(Role).filter(Role.name == "superuser").count() == 0


def test_no_self_escalation(app):
    sec = logged_in(app, "sec3", ["security_admin"])
    uid = user_id(app, "sec3")
    csrf = session_csrf(sec)
    r = sec.post(f"/admin/users/{uid}", base_url=BASE, data={"roles": ["security_admin", "system_admin"],
                                                             "park_scope": "on", "csrf_token": csrf})
    assert r.status_code == 403
    st = state_of(app)
    with st.db() as s:
        assert {r.name for r in find_user(s, "sec3").roles} == {"security_admin"}
    assert audited(app, "access.denied")[0].username == "sec3"
    # built-in roles cannot be edited to gain permissions
    with st.db() as s:
        rid = s.query(Role).filter(Role.name == "operator").one().id
    r = sec.post(f"/admin/roles/{rid}", base_url=BASE, data={"permissions": ["user.manage"], "csrf_token": csrf})
    assert r.status_code == 403


def test_lower_roles_cannot_administer(app):
    for name, roles, kw in (("op.x", ["operator"], {"park_scope": True}), ("ent.x", ["enterprise_user"],
                                                                            {"enterprises": ["A"]}),
                            ("aud.x", ["audit_admin"], {}), ("sys.x", ["system_admin"], {"park_scope": True})):
        c = logged_in(app, name, roles, **kw)
        csrf = session_csrf(c)
        r = c.post("/admin/users/new", base_url=BASE, data={"username": f"{name}.evil", "roles": ["system_admin"],
                                                             "csrf_token": csrf})
        assert r.status_code == 403, name
        assert c.post("/admin/roles/new", base_url=BASE, data={"name": "x", "csrf_token": csrf}).status_code == 403
    st = state_of(app)
    with st.db() as s:
        assert find_user(s, "op.x.evil") is None


def test_audit_admin_views_filters_and_exports(app):
    make_user(app, "someone", ["operator"], totp=False)
    c = app.test_client()
    page = c.get("/login", base_url=BASE)
    c.post("/login", base_url=BASE, data={"username": "someone", "password": "wrong",
                                          "csrf_token": csrf_from(page.get_data(as_text=True))})
    aud = logged_in(app, "auditor", ["audit_admin"])
    html = aud.get("/audit", base_url=BASE, query_string={"result": "failure"}).get_data(as_text=True)
    assert "login.failure" in html and "someone" in html
    j = aud.get("/api/v1/audit", base_url=BASE, query_string={"user": "someone"}).json
    assert j["total"] >= 1 and all(r["username"] == "someone" for r in j["rows"])
    stats = aud.get("/api/v1/audit/stats", base_url=BASE).json
    assert stats["failures"] >= 1 and 0 < stats["failure_rate"] < 1
    assert aud.get("/api/v1/audit/verify", base_url=BASE).json["ok"] is True
    assert aud.get("/audit/report", base_url=BASE).status_code == 200
    csv = aud.get("/audit/export.csv", base_url=BASE, query_string={"action": "login."})
    assert csv.mimetype == "text/csv" and "attachment" in csv.headers["Content-Disposition"]
    xlsx = aud.get("/api/v1/audit/export", base_url=BASE, query_string={"format": "xlsx"})
    assert xlsx.data[:2] == b"PK"
    assert [r.username for r in audited(app, "audit.export")] == ["auditor", "auditor"]
    assert aud.get("/audit", base_url=BASE, query_string={"from": "yesterday"}).status_code == 400
