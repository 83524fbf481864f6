"""Scheduled reports e-mailed through the real notifier to a real SMTP server, per-enterprise recipients,
with the notifier down at first (the outbox keeps them) and a file changed on disk (never sent)."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from lingtan.settings import Settings
from lingtan_calc.adapters.report_delivery import ReportDeliveryRow
from lingtan_calc.adapters.report_store import ReportRow
from lingtan_calc.service import report_mail, reports
from lingtan_calc.service.app import create_app, service_of
from lingtan_tools.stack.services import free_port
from tests.calc.test_api import computed
from tests.calc.test_engine_influx import write_readings
from tests.notify.conftest import TOKEN, base_config, make_config, smtp, start_bridge  # noqa: F401 - fixtures

FAR_FUTURE = pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime()  # every pending row is due


def notify_config(tmp_path: Path, sink) -> dict:
    raw = base_config(None, sink)
    raw["recipients"] = {
        "default": [{"name": "园区能源管理", "emails": ["energy@park.example.cn"], "channels": ["email"],
                     "severities": ["critical"], "reports": ["day", "month", "year"]}],
        "enterprises": {"B": [{"name": "B 能源主管", "emails": ["energy@b.example.cn"], "channels": ["email"],
                               "reports": ["day"]},
                              {"name": "B alerts only", "emails": ["ops@b.example.cn"], "channels": ["email"]}]},
    }
    return raw


@pytest.fixture
def mail_app(influx_db, tmp_path, park):
    for rp, default in (("raw", " DEFAULT"), ("accounting", "")):
        influx_db.query(f'CREATE RETENTION POLICY "{rp}" ON "{influx_db.database}" DURATION INF REPLICATION 1{default}',
                        database="")
    write_readings(influx_db, park)
    settings = Settings(state_dir=tmp_path, influx_url=influx_db.url, influx_db=influx_db.database,
                        influx_user=influx_db.username, influx_password=influx_db.password,
                        park_file=tmp_path / "ex2.yaml", notify_url=f"http://127.0.0.1:{free_port()}",
                        notify_token=TOKEN)  # nothing listens there yet: the notifier is down
    app = create_app(settings, park=park, client=influx_db, start_scheduler=False)
    app.config["TESTING"] = True
    return app


def test_reports_reach_each_enterprise_by_mail(mail_app, tmp_path, smtp, start_bridge):  # noqa: F811
    computed(mail_app)
    svc = service_of(mail_app)
    assert reports.scheduled(svc, pd.Timestamp("2026-03-03", tz="Asia/Shanghai")) == 12  # 2 days × 3 entities × 2
    assert report_mail.deliver_due(svc) == {"sent": 0, "retry": 6, "failed": 0}  # the notifier is down
    with svc.sessions() as s:
        rows = s.query(ReportDeliveryRow).order_by(ReportDeliveryRow.id).all()
        assert {r.status for r in rows} == {"pending"} and {r.attempts for r in rows} == {1}
        assert "Connection refused" in rows[0].last_error or "URLError" in rows[0].last_error
        a_day = next(r for r in rows if r.entity == "A" and r.period == "2026-03-02")
        tampered = s.get(ReportRow, int(a_day.report_ids.split(",")[0]))
    Path(tampered.path).write_bytes(Path(tampered.path).read_bytes() + b"x")  # changed after it was archived

    bridge = start_bridge(make_config(tmp_path, notify_config(tmp_path, smtp)))
    svc.settings = svc.settings.model_copy(update={"notify_url": bridge.url})
    assert report_mail.deliver_due(svc, FAR_FUTURE) == {"sent": 5, "retry": 0, "failed": 1}
    mails = smtp.wait(5)
    to = sorted(r for _f, rcpts, _m in mails for r in rcpts)
    # the park's and A's (no groups of its own) to the park's energy manager, B's to B's: not to its alerts-only group
    assert to == ["energy@b.example.cn"] * 2 + ["energy@park.example.cn"] * 3
    msg = next(m for _f, rcpts, m in mails if rcpts == ["energy@b.example.cn"] and "2026-03-01" in m["Subject"])
    assert msg["Subject"] == "【零碳平台】制造企业 日报 2026-03-01" and msg["X-Lingtan-Report"]
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert sorted(files) == ["B-day-2026-03-01-zh.pdf", "B-day-2026-03-01-zh.xlsx"]
    with svc.sessions() as s:
        archived = {f"{r.entity}-{r.kind}-{r.period}-{r.lang}.{r.format}": r.sha256 for r in s.query(ReportRow)}
    for name, data in files.items():
        assert hashlib.sha256(data).hexdigest() == archived[name]  # the attachment is the archived file
    assert "SHA-256 " + archived["B-day-2026-03-01-zh.pdf"] in msg.get_body(("plain",)).get_content()
    assert openpyxl.load_workbook(io.BytesIO(files["B-day-2026-03-01-zh.xlsx"])).sheetnames

    client = mail_app.test_client()
    b = client.get("/api/v1/reports/deliveries?entity=B").json
    assert b["notifier"] is True and [(r["status"], r["emails"]) for r in b["rows"]] == [("sent", 1), ("sent", 1)]
    (bad,) = client.get("/api/v1/reports/deliveries?entity=A&status=failed").json["rows"]
    assert bad["period"] == "2026-03-02" and "changed since it was archived" in bad["last_error"]
    assert client.get("/api/v1/reports/deliveries?status=lost").json["error"]["field"] == "status"
    assert report_mail.deliver_due(svc, FAR_FUTURE) == {"sent": 0, "retry": 0, "failed": 0}  # nothing twice


def test_notifier_checks_a_report_before_accepting_it(tmp_path, smtp, start_bridge):  # noqa: F811
    bridge = start_bridge(make_config(tmp_path, notify_config(tmp_path, smtp)))
    data = b"%PDF-1.4 a report"
    good = {"name": "park-month-2026-02-zh.pdf", "content_type": "application/pdf",
            "sha256": hashlib.sha256(data).hexdigest(), "content_base64": base64.b64encode(data).decode()}
    body = {"report": "r1", "entity": "park", "kind": "month", "period": "2026-02", "files": [good]}
    wrong = {**body, "files": [{**good, "sha256": "0" * 64}]}
    r = bridge.call("POST", "/reports", json=wrong)
    assert r.status_code == 400 and r.json()["error"]["field"] == "files.0.sha256"
    assert bridge.deliveries() == []  # nothing accepted
    assert bridge.call("POST", "/reports", json=body, token="wrong-token-0123456789").status_code == 401
    r = bridge.call("POST", "/reports", json={**body, "kind": "week"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "kind"
    r = bridge.call("POST", "/reports", json={**body, "entity": "B", "kind": "month"})  # B's group takes day only
    assert r.status_code == 200 and r.json()["deliveries"] == 0
    r = bridge.call("POST", "/reports", json=body)
    assert r.status_code == 200 and r.json()["deliveries"] == 1
    (mail,) = [m for _f, _r, m in smtp.wait(1)]
    assert mail["Subject"] == "【零碳平台】park 月报 2026-02"
    assert [p.get_content() for p in mail.iter_attachments()] == [data]


def test_a_report_group_needs_email(tmp_path, smtp):  # noqa: F811
    from lingtan_notify.config import ConfigError

    raw = notify_config(tmp_path, smtp)
    raw["recipients"]["enterprises"]["B"][0] = {"name": "B sms", "phones": ["13800000009"], "channels": ["email"],
                                                "reports": ["day"]}
    with pytest.raises(ConfigError, match=r"recipients.enterprises.B.0.reports = \['day'\]: reports go by e-mail"):
        make_config(tmp_path, raw)
