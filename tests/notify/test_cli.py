"""``lingtan notify test|check|serve``: the commands as registered by lingtan_notify.cli.register.

The parser is built here the way ``lingtan.cli.build_parser`` builds its ``nested`` commands, so the tests do
not depend on the notify group being registered there yet; ``serve`` runs in a real child process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from lingtan_notify.cli import register
from lingtan_tools.stack.services import free_port
from tests.notify.conftest import ENV, TOKEN, base_config, payload, write_config

REPO = Path(__file__).resolve().parents[2]
MAIN = """
import argparse, logging, sys
from lingtan_notify.cli import register
def nested(group, name, func, help_text):
    sp = group.add_parser(name, help=help_text)
    sp.add_argument("--state-dir"); sp.add_argument("--park"); sp.set_defaults(func=func)
    return sp
p = argparse.ArgumentParser(prog="lingtan")
register(p.add_subparsers(dest="command", required=True), nested)
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
args = p.parse_args(sys.argv[1:])
sys.exit(int(args.func(args) or 0))
"""


def _run(argv: list[str]) -> int:
    def nested(group, name, func, help_text):
        sp = group.add_parser(name, help=help_text)
        sp.add_argument("--state-dir")
        sp.add_argument("--park")
        sp.set_defaults(func=func)
        return sp

    p = argparse.ArgumentParser(prog="lingtan")
    register(p.add_subparsers(dest="command", required=True), nested)
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


@pytest.fixture
def env(monkeypatch, tmp_path):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LINGTAN_STATE_DIR", str(tmp_path))
    for k in ("LINGTAN_NOTIFY_CONFIG", "LINGTAN_NOTIFY_HOST", "LINGTAN_NOTIFY_PORT", "LINGTAN_NOTIFY_DATABASE_URL"):
        monkeypatch.delenv(k, raising=False)


def test_notify_test_sends_a_test_message(tmp_path, env, receiver, capsys):
    cfg = write_config(tmp_path, base_config(receiver, None))
    code = _run(["notify", "test", "--config", str(cfg), "--enterprise", "e01", "--severity", "critical"])
    out = capsys.readouterr().out
    assert code == 0, out
    sms = receiver.wait(3)
    assert {r.json["mobile"] for r in sms} == {"13800000001", "13800000002", "13700000000"}
    assert all(r.json["content"].startswith("告警（严重）｜华东精细化工有限公司：这是一条测试消息，请忽略") for r in sms)
    assert out.count("ok      sms") == 3 and "138****0001" in out and "13800000001" not in out

    # a warning does not reach the critical-only park duty; a failing provider makes the command fail
    receiver.default = (500, {"code": 500})
    assert _run(["notify", "test", "--config", str(cfg), "--enterprise", "e01", "--severity", "warning"]) == 1
    assert "FAILED  sms" in capsys.readouterr().out
    assert {r.json["mobile"] for r in receiver.requests[3:]} == {"13800000001", "13800000002"}
    # nobody wants info alerts of an enterprise without groups
    assert _run(["notify", "test", "--config", str(cfg), "--enterprise", "e77", "--severity", "info"]) == 1
    assert "no recipients" in capsys.readouterr().err


def test_notify_check_and_default_config_path(tmp_path, env, capsys):
    write_config(tmp_path, base_config(None, None) | {"providers": {"sms": {"url": "http://127.0.0.1:9/sms"}}})
    assert _run(["notify", "check", "--state-dir", str(tmp_path)]) == 0  # <state_dir>/notify.yaml
    out = capsys.readouterr().out
    assert "config valid; channels: sms" in out and "recipients.enterprises.e02.1 e02 manager" in out
    (tmp_path / "notify.yaml").write_text("retry: {max_attempts: 0}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"notify.yaml: retry.max_attempts = 0"):
        _run(["notify", "check", "--state-dir", str(tmp_path)])


def test_notify_serve_runs_until_sigterm(tmp_path, receiver):
    cfg = write_config(tmp_path, base_config(receiver, None))
    port = free_port()
    child_env = {**os.environ, **ENV, "LINGTAN_STATE_DIR": str(tmp_path), "LINGTAN_NOTIFY_CONFIG": str(cfg),
                 "LINGTAN_NOTIFY_PORT": str(port), "LINGTAN_NOTIFY_HOST": "127.0.0.1",
                 "LINGTAN_NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", MAIN, "notify", "serve"], env=child_env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        resp = requests.post(f"{url}/grafana", json=payload(), headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=10)
        assert resp.status_code == 200 and resp.json()["deliveries"] == 4
        assert len(receiver.wait(4)) == 4
    finally:
        proc.terminate()
        code = proc.wait(15)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()
    text = (tmp_path / "serve.log").read_text()
    assert f"notification bridge on http://127.0.0.1:{port}" in text and "delivered on attempt 1" in text
