"""Fixtures of the notification-bridge tests: REAL local servers, no mocks.

- :class:`HttpReceiver`: a ``ThreadingHTTPServer`` standing in for the SMS provider and the DingTalk/WeCom
  robots; it records every request and answers from a script (e.g. 500, 500, then 200).
- :class:`SmtpSink`: an aiosmtpd SMTP server (with AUTH LOGIN/PLAIN) that keeps every message.
- :func:`start_bridge`: the bridge app under waitress on a free port, over a SQLite file.
"""

from __future__ import annotations

import copy
import email
import email.policy
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from waitress.server import create_server

from lingtan_notify.app import bridge_of, create_app
from lingtan_notify.config import NotifyConfig, load_config
from lingtan_tools.stack.services import free_port

TOKEN = "grafana-webhook-token-0123456789abcdef"
SMS_TOKEN = "sms-api-token-42"
SMTP_USER, SMTP_PASSWORD = "alerts@park.example.cn", "smtp-pass-2026"
DINGTALK_SECRET = "SECtest0123456789"
ENV = {"LINGTAN_NOTIFY_TOKEN": TOKEN, "TEST_SMS_TOKEN": SMS_TOKEN, "TEST_SMTP_PASSWORD": SMTP_PASSWORD,
       "TEST_DINGTALK_SECRET": DINGTALK_SECRET}


# --------------------------------------------------------------------------- the SMS provider / robots


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # time.monotonic() on arrival

    @property
    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class HttpReceiver:
    """Records requests; answers ``script`` entries (status, JSON) in order, then ``default``."""

    script: list[tuple[int, Any]] = field(default_factory=list)
    default: tuple[int, Any] = (200, {"code": 0, "msg": "OK"})
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                rec = Received(self.command, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                               {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length),
                               time.monotonic())
                with receiver._cond:
                    status, answer = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver.requests.append(rec)
                    receiver._cond.notify_all()
                data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, n: int, timeout: float = 10.0, path: str | None = None) -> list[Received]:
        """The requests (to ``path``, if given) once there are at least ``n``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(got := [r for r in self.requests if path is None or r.path == path]) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} requests to {path or 'any path'}, got {len(got)}: {got}")
                self._cond.wait(left)
            return got

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


# --------------------------------------------------------------------------- SMTP


class SmtpSink:
    """A real SMTP server on a free port; ``messages`` holds (envelope sender, recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.logins: list[tuple[str, str]] = []
        self._cond = threading.Condition()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, authenticator=self._auth,
                                     auth_require_tls=False)
        self.controller.start()

    def _auth(self, server, session, envelope, mechanism, auth_data) -> AuthResult:  # noqa: ANN001 - aiosmtpd
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (SMTP_USER, SMTP_PASSWORD))

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._cond:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
            self._cond.notify_all()
        return "250 OK"

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[str, list[str], EmailMessage]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} e-mails, got {len(self.messages)}")
                self._cond.wait(left)
            return list(self.messages)

    def by_rcpt(self) -> dict[str, EmailMessage]:
        return {rcpt: msg for _frm, rcpts, msg in self.messages for rcpt in rcpts}


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.controller.stop()


# --------------------------------------------------------------------------- config and the bridge


def base_config(receiver: HttpReceiver | None, smtp: SmtpSink | None) -> dict[str, Any]:
    """A notify.yaml (as a dict) pointing at the local servers, with millisecond backoff."""
    providers: dict[str, Any] = {}
    if receiver is not None:
        providers["sms"] = {
            "url": f"{receiver.url}/sms/send", "method": "POST", "encoding": "json",
            "auth": {"header": "Authorization", "scheme": "Bearer", "token_env": "TEST_SMS_TOKEN"},
            "body": {"mobile": "{{ phone }}", "content": "{{ text }}", "sign": "{{ sign }}",
                     "extra": {"alert": "{{ alertname }}", "severity": "{{ severity }}"}},
            "sign": "零碳园区", "success": {"json_field": "code", "equals": 0}, "timeout_s": 2}
    if smtp is not None:
        providers["smtp"] = {"host": "127.0.0.1", "port": smtp.port, "security": "none", "username": SMTP_USER,
                             "password_env": "TEST_SMTP_PASSWORD", "from_addr": "alerts@park.example.cn",
                             "timeout_s": 2}
    both = ["sms", "email"] if receiver is not None and smtp is not None else ["sms"] if smtp is None else ["email"]
    return {
        "locale": "zh",
        "enterprise_names": {"e01": "华东精细化工有限公司", "e02": "江南纺织印染有限公司"},
        "providers": providers,
        "recipients": {
            "default": [{"name": "园区值班", "phones": ["13700000000"], "emails": ["ops@park.example.cn"],
                         "severities": ["critical"], "copy_all": True, "resolved": False, "channels": both}],
            "enterprises": {
                "e01": [{"name": "e01 能源管理员", "phones": ["13800000001", "138-0000-0002"],
                         "emails": ["energy@e01.example.cn"], "channels": both}],
                "e02": [{"name": "e02 能源管理员", "phones": ["13900000001"], "emails": ["nengyuan@e02.example.cn"],
                         "severities": ["critical", "warning"], "channels": both},
                        {"name": "e02 manager", "emails": ["manager@e02.example.com"], "severities": ["critical"],
                         "locale": "en", "channels": ["email"] if smtp is not None else ["sms"]}],
            },
        },
        "retry": {"max_attempts": 5, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "jitter": 0,
                  "poll_interval_s": 0.05, "lease_s": 30},
    }


def write_config(tmp_path: Path, raw: dict[str, Any], name: str = "notify.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def make_config(tmp_path: Path, raw: dict[str, Any]) -> NotifyConfig:
    """The config as the service loads it: a YAML file read with :func:`load_config`."""
    return load_config(write_config(tmp_path, raw), environ=ENV)


@dataclass
class RunningBridge:
    app: Any
    url: str
    server: Any
    thread: threading.Thread
    closed: bool = False

    @property
    def bridge(self):
        return bridge_of(self.app)

    def post(self, payload: Any, token: str | None = TOKEN, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.url}/api/v1/grafana", json=payload, headers=headers, timeout=10, **kw)

    def get(self, path: str, token: str | None = TOKEN, **params: Any) -> requests.Response:
        return self.call("GET", path, token, params=params)

    def call(self, method: str, path: str, token: str | None = TOKEN, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=10, **kw)

    def deliveries(self, **params: Any) -> list[dict[str, Any]]:
        resp = self.get("/deliveries", **params)
        assert resp.status_code == 200, resp.text
        return resp.json()["deliveries"]

    def wait_settled(self, n: int, timeout: float = 10.0, status: str = "delivered") -> list[dict[str, Any]]:
        """The deliveries once ``n`` of them have ``status``."""
        deadline = time.monotonic() + timeout
        while len(got := self.deliveries(status=status)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} {status} deliveries, got {self.deliveries()}")
            time.sleep(0.02)
        return got

    def close(self) -> None:
        """Stop the server and the bridge; again (the fixture's teardown after a test's own close) is a no-op:
        a second stop would write to the closed trigger's file descriptor, or to whatever file reused it."""
        if self.closed:
            return
        self.closed = True
        stop_waitress(self.server, self.thread)
        self.bridge.close()


def stop_waitress(server: Any, thread: threading.Thread) -> None:
    """Stop a waitress server running in ``thread``: its loop thread empties its own socket map (so the loop
    ends), then the sockets are closed here. Closing them under the running loop makes select() fail."""
    dispatchers: list[Any] = []

    def _empty_map() -> None:
        dispatchers.extend(server._map.values())
        server._map.clear()

    server.trigger.pull_trigger(_empty_map)
    thread.join(5)
    for d in dispatchers:
        d.close()
    server.task_dispatcher.shutdown()


@pytest.fixture
def start_bridge(tmp_path: Path) -> Iterator[Callable[..., RunningBridge]]:
    """``start_bridge(cfg, db=None, start_worker=True)``: a bridge under waitress; all closed at the end."""
    started: list[RunningBridge] = []

    def start(cfg: NotifyConfig, db: Path | None = None, start_worker: bool = True) -> RunningBridge:
        url = f"sqlite:///{db or tmp_path / 'notify.db'}"
        app = create_app(cfg, database_url=url, start_worker=start_worker)
        port = free_port()
        server = create_server(app, host="127.0.0.1", port=port, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        rb = RunningBridge(app, f"http://127.0.0.1:{port}", server, thread)
        started.append(rb)
        return rb

    yield start
    for rb in started:
        rb.close()


# --------------------------------------------------------------------------- Grafana's webhook body

FIRING_TWO: dict[str, Any] = {
    "receiver": "lingtan-notify",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {"status": "firing",
         "labels": {"alertname": "空压机功率超限", "enterprise": "e01", "grafana_folder": "零碳园区",
                    "meter": "e01-compressor-3", "severity": "critical"},
         "annotations": {"summary": "3号空压机功率超限",
                         "description": "当前功率 132.5 kW，超过阈值 120 kW 已持续 5 分钟。"},
         "startsAt": "2026-03-02T02:15:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://grafana.park.local/alerting/grafana/cdf1x2/view?orgId=1",
         "fingerprint": "8d2a1c5e0f3b7a91",
         "silenceURL": "http://grafana.park.local/alerting/silence/new?alertmanager=grafana&matcher=meter%3De01",
         "dashboardURL": "http://grafana.park.local/d/energy-e01?orgId=1", "panelURL": "",
         "values": {"B": 132.5, "C": 1},
         "valueString": "[ var='B' labels={meter=e01-compressor-3} value=132.5 ], [ var='C' value=1 ]"},
        {"status": "firing",
         "labels": {"alertname": "蒸汽单耗偏高", "enterprise": "e02", "grafana_folder": "零碳园区",
                    "severity": "warning", "unit": "dyeing-line-2"},
         "annotations": {"summary": "2号染色线蒸汽单耗偏高", "description": "单耗 3.1 t/t，高于基准 2.6 t/t"},
         "startsAt": "2026-03-02T02:20:00.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://grafana.park.local/alerting/grafana/ab77q/view?orgId=1",
         "fingerprint": "41f0e9d2c3b4a5f6", "silenceURL": "", "dashboardURL": "", "panelURL": "",
         "values": {"A": 3.1}, "valueString": "[ var='A' value=3.1 ]"},
    ],
    "groupLabels": {"grafana_folder": "零碳园区"},
    "commonLabels": {"grafana_folder": "零碳园区"},
    "commonAnnotations": {},
    "externalURL": "http://grafana.park.local/",
    "version": "1",
    "groupKey": '{}/{grafana_folder="零碳园区"}:{grafana_folder="零碳园区"}',
    "truncatedAlerts": 0,
    "title": "[FIRING:2] 零碳园区",
    "state": "alerting",
    "message": "**Firing**\n\nValue: B=132.5 ...",
}


def payload(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`FIRING_TWO` with top-level keys replaced."""
    out = copy.deepcopy(FIRING_TWO)
    out.update(changes)
    return out


def resolved(p: dict[str, Any], ends: str = "2026-03-02T02:45:00Z") -> dict[str, Any]:
    """``p`` with every alert resolved at ``ends``."""
    out = copy.deepcopy(p)
    out["status"], out["title"], out["state"] = "resolved", out["title"].replace("FIRING", "RESOLVED"), "ok"
    for a in out["alerts"]:
        a["status"], a["endsAt"] = "resolved", ends
    return out
