"""The proxy as deployed: `lingtan proxy serve` (gunicorn, TLS) and `lingtan proxy redirect`, over real sockets.

TLS versions, HSTS, the HTTP redirect, client-certificate login (mutual TLS) with revocation, and the
Grafana proxy: identity headers from RBAC with every client copy stripped, and WebSockets tunnelled.
Grafana itself runs only in docker-compose (DEVELOPERS.md decision 3); here a WebSocket-capable server
stands in for it and echoes what reached it.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect as ws_connect

from lingtan_proxy.certs import ParkCA, issue_for_user, revoke_certificate
from tests.proxy.conftest import csrf_from, make_user, portal_login, state_of


def test_tls_versions_and_hsts(live):
    ctx = ssl.create_default_context(cafile=live["ca"])
    with socket.create_connection(("127.0.0.1", live["https"])) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(live["ca"])
    with pytest.warns(DeprecationWarning):  # TLS 1.0/1.1 are deprecated in Python too
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", live["https"])) as raw, \
            old.wrap_socket(raw, server_hostname="localhost"):
        pass
    r = requests.get(live["url"] + "/login", verify=live["ca"])
    assert r.status_code == 200
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_plain_http_only_redirects(live):
    r = requests.get(f"http://localhost:{live['http']}/overview?x=1", allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"] == f"https://localhost:{live['https']}/overview?x=1"
    r = requests.post(f"http://localhost:{live['http']}/login", data={"username": "a"}, allow_redirects=False)
    assert r.status_code == 308 and not r.content


def test_client_certificate_login_and_revocation(app, live, tmp_path):
    make_user(app, "certuser", ["energy_manager"], park_scope=True, totp=False)
    st = state_of(app)
    ca = ParkCA(Path(live["ca"]).parent)
    with st.db() as s:
        from lingtan_proxy.identity import find_user

        issued = issue_for_user(s, ca, find_user(s, "certuser"))
    crt, key = tmp_path / "u.crt", tmp_path / "u.key"
    crt.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    # without the certificate the role's required second factor cannot be met: enrolment is asked
    _sess, r = portal_login(live, "certuser")
    assert r.url.endswith("/mfa/totp")
    sess, r = portal_login(live, "certuser", cert=(str(crt), str(key)))
    assert r.url.endswith("/login/second-factor")
    assert 'value="certificate"' in r.text
    r = sess.post(live["url"] + "/login/second-factor", data={"method": "certificate", "csrf_token": csrf_from(r.text)})
    assert r.url.endswith("/overview") and r.status_code == 200
    with st.db() as s:
        revoke_certificate(s, ca, issued.serial_hex, "keyCompromise")
    sess, r = portal_login(live, "certuser", cert=(str(crt), str(key)))
    assert r.url.endswith("/mfa/totp")  # the revoked certificate no longer counts: enrol another factor
    r = sess.post(live["url"] + "/login/second-factor", data={"method": "certificate", "csrf_token": csrf_from(r.text)})
    assert r.url.endswith("/mfa/totp")
    assert sess.get(live["url"] + "/overview", allow_redirects=False).status_code == 302


def test_grafana_headers_are_set_by_the_proxy_only(app, live, grafana_standin):
    acct = make_user(app, "viewer", ["operator"], park_scope=True)
    sess, r = portal_login(live, "viewer")
    r = sess.post(live["url"] + "/login/second-factor", data={"method": "totp", "code": acct.code(),
                                                               "csrf_token": csrf_from(r.text)})
    assert r.url.endswith("/overview")
    spoof = {"X-WEBAUTH-USER": "admin", "X-Webauth-Role": "Admin", "x-webauth-email": "evil@x", "Remote-User": "admin",
             "X-Forwarded-For": "10.9.9.9", "Authorization": "Basic YWRtaW46YWRtaW4=", "X-Lingtan-User": "admin"}
    r = sess.get(live["url"] + "/grafana/api/user?x=1", headers=spoof)
    assert r.status_code == 200
    seen = {k.lower(): v for k, v in r.json()["headers"].items()}
    assert r.json()["path"] == "/grafana/api/user?x=1"
    assert seen["x-webauth-user"] == "viewer"
    assert seen["x-webauth-role"] == "Viewer"
    assert seen["x-webauth-email"] != "evil@x"
    assert "remote-user" not in seen and "authorization" not in seen and "x-lingtan-user" not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert "__Host-lingtan" not in seen.get("cookie", "")
    # path traversal never leaves /grafana/
    r = sess.get(live["url"] + "/grafana/public/..%2f..%2fcalc/api/v1/health")
    assert r.status_code in (400, 404)
    # WebSocket (Grafana Live) through the proxy
    ctx = ssl.create_default_context(cafile=live["ca"])
    cookie = "; ".join(f"{c.name}={c.value}" for c in sess.cookies)
    with ws_connect(f"wss://localhost:{live['https']}/grafana/api/live/ws", ssl=ctx,
                    additional_headers={"Cookie": cookie, "Origin": live["url"], "X-WEBAUTH-USER": "admin"}) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "echo:ping"
    assert {k.lower(): v for k, v in grafana_standin[1][-1].items()}["x-webauth-user"] == "viewer"


def test_grafana_refused_without_login_or_role(app, live):
    r = requests.get(live["url"] + "/grafana/api/user", verify=live["ca"], allow_redirects=False,
                     headers={"X-WEBAUTH-USER": "admin"})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    make_user(app, "entuser", ["enterprise_user"], enterprises=["A"], totp=False)
    sess, r = portal_login(live, "entuser")
    assert r.url.endswith("/overview")
    assert sess.get(live["url"] + "/grafana/api/user").status_code == 403
    with pytest.raises(Exception):  # noqa: B017 - the handshake is refused (403)
        cookie = "; ".join(f"{c.name}={c.value}" for c in sess.cookies)
        with ws_connect(f"wss://localhost:{live['https']}/grafana/api/live/ws",
                        ssl=ssl.create_default_context(cafile=live["ca"]), additional_headers={"Cookie": cookie}):
            pass


def test_role_requiring_a_certificate_refuses_totp(app, live, tmp_path):
    """A role may demand a cryptographic second factor: then only the client certificate completes login."""
    from lingtan_proxy.models import Role, RolePermission

    st = state_of(app)
    with st.db() as s:
        s.add(Role(name="grid_dispatcher", title_zh="调度员", title_en="Dispatcher", certificate_required=True,
                   grafana_role="Viewer", permissions=[RolePermission(permission="data.read")]))
        s.commit()
    acct = make_user(app, "dispatcher", ["grid_dispatcher"], park_scope=True)  # has TOTP too
    sess, r = portal_login(live, "dispatcher")
    assert r.url.endswith("/login/second-factor") and 'name="code"' not in r.text
    r = sess.post(live["url"] + "/login/second-factor", data={"method": "totp", "code": acct.code(),
                                                               "csrf_token": csrf_from(r.text)})
    assert r.status_code == 401
    ca = ParkCA(Path(live["ca"]).parent)
    with st.db() as s:
        from lingtan_proxy.identity import find_user

        issued = issue_for_user(s, ca, find_user(s, "dispatcher"))
    crt, key = tmp_path / "d.crt", tmp_path / "d.key"
    crt.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    sess, r = portal_login(live, "dispatcher", cert=(str(crt), str(key)))
    r = sess.post(live["url"] + "/login/second-factor", data={"method": "certificate", "csrf_token": csrf_from(r.text)})
    assert r.url.endswith("/overview") and r.status_code == 200
