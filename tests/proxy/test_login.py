"""Login through the portal's forms: factors, lockout, sessions, CSRF, fixation, logout everywhere."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import select, update

from lingtan_proxy import audit, sessions
from lingtan_proxy.cli import create_first_admin
from lingtan_proxy.models import LoginSession
from tests.proxy.conftest import BASE, PASSWORD, csrf_from, login, make_user, session_csrf, state_of


def actions(app, **flt) -> list[tuple[str, str, str]]:
    st = state_of(app)
    with st.db() as s:
        _, rows = audit.query(s, audit.AuditFilter(**flt), limit=1000)
        return [(r.action, r.username, r.result) for r in reversed(rows)]


def test_password_and_totp_login(app, client):
    acct = make_user(app, "op1", ["operator"], park_scope=True)
    resp = login(client, acct)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/overview")
    cookie = resp.headers.getlist("Set-Cookie")[-1]
    assert cookie.startswith("__Host-lingtan=")
    for attr in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attr in cookie
    page = client.get("/overview", base_url=BASE)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert ("login.success", "op1", "success") in actions(app)


def test_wrong_totp_then_replay_refused(app, client):
    acct = make_user(app, "op2", ["operator"])
    code = acct.code()
    assert login(client, acct, code=code).status_code == 302
    client.post("/logout", base_url=BASE, data={"csrf_token": session_csrf(client)})
    resp = login(client, acct, code=code)  # the same code again: refused (RFC 6238 section 5.2)
    assert resp.status_code == 401
    assert client.get("/overview", base_url=BASE).status_code == 302


def test_generic_message_and_lockout(app, client):
    acct = make_user(app, "op3", ["operator"], totp=False)
    bodies = []
    for name, pw in (("op3", "wrong"), ("nosuchuser", "wrong")):
        page = client.get("/login", base_url=BASE)
        r = client.post("/login", base_url=BASE, data={"username": name, "password": pw,
                                                        "csrf_token": csrf_from(page.get_data(as_text=True))})
        assert r.status_code == 401
        bodies.append(r.get_data(as_text=True).replace(name, "NAME"))
    assert bodies[0] == bodies[1], "the answer tells whether the user exists"
    for _ in range(4):
        page = client.get("/login", base_url=BASE)
        client.post("/login", base_url=BASE, data={"username": "op3", "password": "wrong",
                                                   "csrf_token": csrf_from(page.get_data(as_text=True))})
    resp = login(client, acct)  # right password, but locked
    assert resp.status_code == 401
    assert ("login.locked", "op3", "denied") in actions(app)


def test_first_admin_changes_password_then_must_enrol(app, client, proxy_settings):
    otp = create_first_admin(proxy_settings)
    assert create_first_admin(proxy_settings) is None  # never a second time
    page = client.get("/login", base_url=BASE)
    r = client.post("/login", base_url=BASE, data={"username": "admin", "password": otp,
                                                    "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.headers["Location"].endswith("/password")
    assert client.get("/overview", base_url=BASE).status_code == 302  # nothing else before the change
    page = client.get("/password", base_url=BASE)
    r = client.post("/password", base_url=BASE, data={"current_password": otp, "new_password": "weak",
                                                       "repeat_password": "weak",
                                                       "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 400
    r = client.post("/password", base_url=BASE, data={"current_password": otp, "new_password": PASSWORD,
                                                       "repeat_password": PASSWORD,
                                                       "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.headers["Location"].endswith("/mfa/totp")  # admins always need a second factor
    assert client.get("/admin/users", base_url=BASE).status_code == 302
    page = client.get("/mfa/totp", base_url=BASE)
    html = page.get_data(as_text=True)
    assert client.get("/mfa/totp/qr.svg", base_url=BASE).mimetype == "image/svg+xml"
    st = state_of(app)
    with st.db() as s:
        from lingtan_proxy.identity import find_user, totp_secret

        secret = totp_secret(st.ctx, find_user(s, "admin"))
    r = client.post("/mfa/totp", base_url=BASE, data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_from(html)})
    assert r.status_code == 200 and r.get_data(as_text=True).count("<li") >= 10  # the recovery codes
    assert client.get("/admin/users", base_url=BASE).status_code == 200


def test_session_fixation_and_rotation(app, client):
    acct = make_user(app, "op4", ["operator"])
    planted = "attacker-chosen-session-id"
    client.set_cookie(sessions.COOKIE, planted, domain="localhost", secure=True)
    resp = login(client, acct)
    new = client.get_cookie(sessions.COOKIE, domain="localhost").value
    assert new != planted
    assert resp.status_code == 302
    # the pending (password-only) session id was replaced when the second factor completed
    st = state_of(app)
    with st.db() as s:
        rows = s.execute(select(LoginSession)).scalars().all()
        assert len(rows) == 2 and sum(r.revoked_at is None for r in rows) == 1


def test_csrf_required_on_state_changes(app, client):
    acct = make_user(app, "op5", ["operator"])
    login(client, acct)
    assert client.post("/logout/all", base_url=BASE).status_code == 403
    assert client.post("/logout/all", base_url=BASE, data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/overview", base_url=BASE).status_code == 200  # still logged in
    r = client.post("/profile", base_url=BASE, data={"locale": "en"}, headers={"X-CSRF-Token": session_csrf(client)})
    assert r.status_code == 200
    # the login form too (double-submit cookie)
    fresh = app.test_client()
    r = fresh.post("/login", base_url=BASE, data={"username": "op5", "password": PASSWORD})
    assert r.status_code == 403


def test_idle_timeout_and_absolute_lifetime(app, client):
    acct = make_user(app, "op6", ["operator"])
    login(client, acct)
    st = state_of(app)
    with st.db() as s:
        s.execute(update(LoginSession).values(last_seen=audit.utcnow() - timedelta(minutes=16)))
        s.commit()
    assert client.get("/overview", base_url=BASE).status_code == 302
    login(client, acct, code=acct.code(1))
    with st.db() as s:
        s.execute(update(LoginSession).where(LoginSession.revoked_at.is_(None))
                  .values(created_at=audit.utcnow() - timedelta(hours=9)))
        s.commit()
    assert client.get("/overview", base_url=BASE).status_code == 302


def test_logout_everywhere(app):
    acct = make_user(app, "op7", ["operator"])
    a, b = app.test_client(), app.test_client()
    login(a, acct)
    login(b, acct, code=acct.code(1))
    assert b.get("/overview", base_url=BASE).status_code == 200
    r = a.post("/logout/all", base_url=BASE, data={"csrf_token": session_csrf(a)})
    assert r.status_code == 302
    assert b.get("/overview", base_url=BASE).status_code == 302
    assert ("logout.all", "op7", "success") in actions(app)


def test_disabled_user_cannot_log_in(app, client):
    acct = make_user(app, "op8", ["operator"], totp=False)
    st = state_of(app)
    with st.db() as s:
        from lingtan_proxy.identity import find_user

        find_user(s, "op8").disabled = True
        s.commit()
    assert login(client, acct).status_code == 401


def test_whole_login_and_proxied_read_on_postgresql(postgres, proxy_settings):
    """The same app on PostgreSQL (docker-compose's database): login with TOTP, the raw session read, the
    identity cache and its epoch, a proxied read, the audit chain."""
    from lingtan.db import Base, make_engine
    from lingtan_proxy.app import create_app

    engine = make_engine(postgres)
    Base.metadata.drop_all(engine)
    engine.dispose()
    app = create_app(proxy_settings.model_copy(update={"database_url": postgres}))
    acct = make_user(app, "pg.user", ["operator"], park_scope=True)
    client = app.test_client()
    assert login(client, acct).status_code == 302
    for _ in range(3):  # cache hit after the first
        r = client.get("/calc/api/v1/entities", base_url=BASE)
        assert r.status_code == 200 and [e["id"] for e in r.json] == ["park", "A", "B"]
    st = state_of(app)
    with st.db() as s:  # a role change bumps the epoch: the next request sees it
        from lingtan_proxy.identity import find_user

        user = find_user(s, "pg.user")
        user.park_scope = False
        s.commit()
    assert client.get("/calc/api/v1/entities", base_url=BASE).json == []
    with st.db() as s:
        assert audit.verify(s, st.ctx.audit_key).ok
