"""Fixtures of the auth-proxy tests: a real calc-service over HTTP on a live InfluxDB, the proxy app,
users with real TOTP seeds, and a logged-in test client.

The calc-service runs the two-enterprise example park (A: the park operator with grid, PV and steam;
B: a manufacturer) with two accounted days, so scope tests have two enterprises with real data.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyotp
import pytest
import requests
from waitress.server import create_server
from websockets.sync.server import serve as ws_serve

from lingtan.influxdb import InfluxClient
from lingtan.park.loader import parse_park
from lingtan.settings import Settings
from lingtan_proxy import identity
from lingtan_proxy.app import create_app, state
from lingtan_tools.stack.services import free_port
from tests.calc.parks import PARK_AB
from tests.calc.test_engine_influx import HOURS, START, write_readings

BASE = "https://localhost"
PASSWORD = "Energy-Park-2026!"


@dataclass
class CalcUpstream:
    settings: Settings  # calc-service settings (database, ports); the proxy copies them
    park_file: Path
    service: object  # the CalcService, for a test that recalculates after importing data


@pytest.fixture(scope="module")
def calc_upstream(influxd, tmp_path_factory) -> Iterator[CalcUpstream]:
    """The calc-service (real, waitress in a thread) with two accounted days of park ex2."""
    from lingtan_calc.service.app import create_app as create_calc
    from lingtan_calc.service.app import service_of

    tmp = tmp_path_factory.mktemp("calc")
    name = f"proxy_{int(time.time() * 1000) % 10_000_000}"
    client = InfluxClient(influxd.url, name, influxd.user, influxd.password)
    client.query(f'CREATE DATABASE "{name}"', database="")
    client.query(f'CREATE RETENTION POLICY "raw" ON "{name}" DURATION INF REPLICATION 1 DEFAULT', database="")
    client.query(f'CREATE RETENTION POLICY "accounting" ON "{name}" DURATION INF REPLICATION 1', database="")
    park_file = tmp / "ex2.yaml"
    park_file.write_text(PARK_AB, encoding="utf-8")
    park = parse_park(PARK_AB, park_file)
    write_readings(client, park)
    port = free_port()
    settings = Settings(state_dir=tmp, influx_url=influxd.url, influx_db=name, influx_user=influxd.user,
                        influx_password=influxd.password, park_file=park_file, calc_port=port)
    app = create_calc(settings, park=park, client=client, start_scheduler=False)
    svc = service_of(app)
    job = svc.submit(START, START + pd.Timedelta(hours=HOURS), "fixture", "pytest")
    svc._queue.clear()
    svc.run_job(job)
    assert job.state == "done", job.error
    server = create_server(app, host="127.0.0.1", port=port, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield CalcUpstream(settings, park_file, svc)
    finally:
        from tests.notify.conftest import stop_waitress

        stop_waitress(server, thread)
        client.query(f'DROP DATABASE "{name}"', database="")


@pytest.fixture
def proxy_settings(calc_upstream, tmp_path) -> Settings:
    s = calc_upstream.settings
    return Settings(state_dir=tmp_path, influx_url=s.influx_url, influx_db=s.influx_db, influx_user=s.influx_user,
                    influx_password=s.influx_password, park_file=calc_upstream.park_file, calc_port=s.calc_port)


@pytest.fixture
def app(proxy_settings):
    app = create_app(proxy_settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Account:
    username: str
    password: str
    totp_secret: str | None = None

    def code(self, offset_steps: int = 0) -> str:
        return pyotp.TOTP(self.totp_secret).at(time.time() + 30 * offset_steps)


def make_user(app, username: str, roles: list[str], *, enterprises: list[str] = (), park_scope: bool = False,
              totp: bool = True, password: str = PASSWORD) -> Account:
    """A user who has already changed the one-time password and, with ``totp``, enrolled a TOTP seed."""
    st = state_of(app)
    with st.db() as s:
        user, otp = identity.create_user(s, st.ctx, username=username, roles=roles, actor="pytest", ip="test",
                                         enterprises=list(enterprises), park_scope=park_scope,
                                         known_enterprises=set(st.enterprises))
        assert identity.change_password(s, st.ctx, user, otp, password, ip="test") == []
        secret = None
        if totp:
            identity.begin_totp(s, st.ctx, user)
            secret = identity.totp_secret(st.ctx, user)
            assert identity.confirm_totp(s, st.ctx, user, pyotp.TOTP(secret).at(time.time() - 30), ip="test")
    return Account(username, password, secret)


def state_of(app):
    with app.app_context():
        return state()


def csrf_from(html: str) -> str:
    marker = 'name="csrf_token" value="'
    i = html.index(marker) + len(marker)
    return html[i:html.index('"', i)]


def login(client, account: Account, *, code: str | None = None):
    """Log in through the forms (password, then TOTP when enrolled); returns the last response."""
    page = client.get("/login", base_url=BASE)
    resp = client.post("/login", base_url=BASE, data={"username": account.username, "password": account.password,
                                                       "csrf_token": csrf_from(page.get_data(as_text=True))})
    if account.totp_secret is None or resp.status_code != 302 or "second-factor" not in resp.headers["Location"]:
        return resp
    page = client.get("/login/second-factor", base_url=BASE)
    return client.post("/login/second-factor", base_url=BASE,
                       data={"method": "totp", "code": code or account.code(),
                             "csrf_token": csrf_from(page.get_data(as_text=True))})


def session_csrf(client) -> str:
    """The CSRF token of the logged-in session (from the profile page's forms)."""
    return csrf_from(client.get("/profile", base_url=BASE).get_data(as_text=True))


# --------------------------------------------------------------------------- the proxy as deployed

@pytest.fixture(scope="module")
def grafana_standin():
    """HTTP: answers with the request's headers as JSON. WebSocket: echoes every message."""
    seen: list[dict] = []

    def process_request(connection, request):
        if request.headers.get("Upgrade", "").lower() == "websocket":
            seen.append(dict(request.headers.raw_items()))
            return None
        body = json.dumps({"path": request.path, "headers": dict(request.headers.raw_items())})
        resp = connection.respond(200, body)
        resp.headers["Content-Type"] = "application/json"
        return resp

    def echo(ws):
        for message in ws:
            ws.send(f"echo:{message}")

    port = free_port()
    server = ws_serve(echo, "127.0.0.1", port, process_request=process_request)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}", seen
    server.shutdown()


@pytest.fixture
def live(app, proxy_settings, grafana_standin):
    """`lingtan proxy serve` and `lingtan proxy redirect` on free ports, sharing the test app's state dir."""
    https, http = free_port(), free_port()
    s = proxy_settings
    env = {**os.environ, "LINGTAN_STATE_DIR": str(s.state_dir), "LINGTAN_PARK_FILE": str(s.park_file),
           "LINGTAN_INFLUX_URL": s.influx_url, "LINGTAN_INFLUX_DB": s.influx_db, "LINGTAN_INFLUX_USER": s.influx_user,
           "LINGTAN_INFLUX_PASSWORD": s.influx_password, "LINGTAN_CALC_PORT": str(s.calc_port),
           "LINGTAN_PROXY_PORT": str(https), "LINGTAN_PROXY_HTTP_PORT": str(http),
           "LINGTAN_GRAFANA_URL": grafana_standin[0], "LINGTAN_PROXY_WORKERS": "2"}
    log = open(Path(s.state_dir) / "proxy.log", "wb")  # noqa: SIM115 - closed below
    procs = [subprocess.Popen([sys.executable, "-m", "lingtan.cli", "proxy", cmd], env=env, stdout=log,
                              stderr=subprocess.STDOUT) for cmd in ("serve", "redirect")]
    deadline = time.monotonic() + 60
    for port in (https, http):
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError((Path(s.state_dir) / "proxy.log").read_text())
    ca = str(Path(s.state_dir) / "pki" / "ca.crt")
    yield {"https": https, "http": http, "ca": ca, "url": f"https://localhost:{https}"}
    for p in procs:
        p.terminate()
        p.wait(15)
    log.close()


def portal_login(live, username, password=PASSWORD, cert=None) -> requests.Session:
    sess = requests.Session()
    sess.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over sess.verify (requests#3829)
    sess.verify = live["ca"]
    sess.cert = cert
    page = sess.get(live["url"] + "/login")
    r = sess.post(live["url"] + "/login", data={"username": username, "password": password,
                                                 "csrf_token": csrf_from(page.text)})
    return sess, r


