"""API tokens: shown once, stored hashed, scoped to enterprises and kinds, expiring, revocable, rate-limited,
and every use audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from lingtan_proxy import audit
from lingtan_proxy.models import ApiToken
from lingtan_proxy.tokens import create_token
from tests.proxy.conftest import BASE, csrf_from, login, make_user, state_of

DAY = {"period": "day", "start": "2026-03-01", "end": "2026-03-03"}


def token_for(app, owner: str, roles, *, enterprises, kinds, days=30, rate=None, owner_scope=None, park_scope=False):
    make_user(app, owner, roles, enterprises=owner_scope or [], park_scope=park_scope, totp=False)
    st = state_of(app)
    with st.db() as s:
        from lingtan_proxy.identity import find_user

        row, clear = create_token(s, st.ctx, find_user(s, owner), name="gov", enterprises=enterprises, kinds=kinds,
                                  days=days, rate_per_minute=rate, all_enterprises=set(st.enterprises), ip="t")
        return row.id, clear


def bearer(clear: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {clear}"}


def test_token_created_in_portal_shown_once_and_hashed(app, client):
    acct = make_user(app, "analyst1", ["analyst"], park_scope=True)
    login(client, acct)
    page = client.get("/tokens", base_url=BASE)
    r = client.post("/tokens", base_url=BASE, data={"name": "统计局", "enterprises": ["A"], "kinds": ["energy"],
                                                     "days": "30", "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    clear = html[html.index("lt_"):].split("<")[0].strip()
    assert client.get("/tokens", base_url=BASE).get_data(as_text=True).count(clear) == 0  # never shown again
    st = state_of(app)
    with st.db() as s:
        row = s.execute(select(ApiToken)).scalar_one()
        assert clear not in (row.token_sha256, row.prefix) and len(row.token_sha256) == 64
    fresh = app.test_client()
    assert fresh.get("/api/v1/energy", base_url=BASE, query_string={**DAY, "entity": "A"},
                     headers=bearer(clear)).status_code == 200


def test_scope_kinds_and_audit(app):
    tid, clear = token_for(app, "gov1", ["api_client"], enterprises=["A"], kinds=["energy"], park_scope=True)
    c = app.test_client()
    ok = c.get("/api/v1/energy", base_url=BASE, query_string={**DAY, "entity": "A"}, headers=bearer(clear))
    assert ok.status_code == 200 and ok.json["entity"] == "A"
    assert c.get("/api/v1/energy", base_url=BASE, query_string={**DAY, "entity": "B"},
                 headers=bearer(clear)).status_code == 403
    assert c.get("/api/v1/energy", base_url=BASE, query_string={**DAY, "entity": "park"},
                 headers=bearer(clear)).status_code == 403
    r = c.get("/api/v1/carbon", base_url=BASE, query_string={**DAY, "entity": "A"}, headers=bearer(clear))
    assert r.status_code == 403 and r.json["error"]["code"] == "kind_not_granted"
    csv = c.get("/api/v1/energy", base_url=BASE, query_string={**DAY, "entity": "A", "format": "csv"},
                headers=bearer(clear))
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).lstrip("\ufeff").startswith("period_start")
    # tokens read the data API only: no portal pages, no audit, no calc writes, no Grafana
    for path in ("/overview", "/api/v1/audit", "/calc/api/v1/health", "/api/v1/overview"):
        assert c.get(path, base_url=BASE, headers=bearer(clear)).status_code in (302, 401, 403), path
    st = state_of(app)
    with st.db() as s:
        stats = audit.statistics(s, audit.AuditFilter(action="token.use"))
    assert stats["total"] == 5 and stats["failures"] == 3  # 2 granted; B, park and carbon refused


def test_token_cannot_exceed_owner_scope(app):
    make_user(app, "ent.a", ["enterprise_user"], enterprises=["A"], totp=False)
    st = state_of(app)
    from lingtan_proxy.identity import IdentityError, find_user

    with st.db() as s, pytest.raises(IdentityError, match="not within your data scope"):
        create_token(s, st.ctx, find_user(s, "ent.a"), name="x", enterprises=["B"], kinds=["energy"], days=1,
                     rate_per_minute=None, all_enterprises=set(st.enterprises), ip="t")


def test_expired_and_revoked_tokens_fail(app):
    tid, clear = token_for(app, "gov2", ["api_client"], enterprises=["park"], kinds=["energy"], park_scope=True)
    c = app.test_client()
    q = {**DAY, "entity": "A"}
    assert c.get("/api/v1/energy", base_url=BASE, query_string=q, headers=bearer(clear)).status_code == 200
    st = state_of(app)
    with st.db() as s:
        s.execute(update(ApiToken).where(ApiToken.id == tid).values(expires_at=audit.utcnow() - timedelta(seconds=1)))
        s.commit()
    assert c.get("/api/v1/energy", base_url=BASE, query_string=q, headers=bearer(clear)).status_code == 401
    tid2, clear2 = token_for(app, "gov3", ["api_client"], enterprises=["park"], kinds=["energy"], park_scope=True)
    with st.db() as s:
        from lingtan_proxy.tokens import revoke_token

        revoke_token(s, st.ctx, s.get(ApiToken, tid2), actor="t", ip="t")
    assert c.get("/api/v1/energy", base_url=BASE, query_string=q, headers=bearer(clear2)).status_code == 401
    assert c.get("/api/v1/energy", base_url=BASE, query_string=q,
                 headers=bearer("lt_" + "x" * 43)).status_code == 401


def test_rate_limit(app):
    _tid, clear = token_for(app, "gov4", ["api_client"], enterprises=["A"], kinds=["realtime"], rate=3,
                            park_scope=True)
    c = app.test_client()
    codes = [c.get("/api/v1/realtime", base_url=BASE, query_string={"entity": "A"}, headers=bearer(clear)).status_code
             for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
