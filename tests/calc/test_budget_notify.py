"""End to end: a carbon budget, a simulated overrun, the warnings, and the messages at a real SMS
HTTP receiver and a real SMTP server through the notifier, per-enterprise recipients, then the
warning resolved after a four-eyes reallocation.

Enterprise B of tests/calc/test_forecast.py emits about 13 tCO₂ a day. Its 2026 carbon plan gives
April 60 t: by 4 April (four days) it has used 87 %; then a runaway day on 5 April (2 000 kWh an
hour more for 24 hours) takes April past its allocation and the day far above its forecast.
"""

from __future__ import annotations

import pandas as pd

from lingtan.park.index import iter_points
from lingtan.series import PointEncoder
from lingtan_calc.service import budget, warning_notify
from lingtan_calc.service.scheduler import service_of
from tests.calc.test_forecast import ORIGIN, forecast_app  # noqa: F401 - the fixture
from tests.notify.conftest import TOKEN, base_config, make_config, receiver, smtp, start_bridge  # noqa: F401

TZ = "Asia/Shanghai"
FAR_FUTURE = pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime()  # every pending message is due
SPIKE_DAY = pd.Timestamp("2026-04-05", tz=TZ)
EXTRA_KWH_PER_H = 2000.0


def notify_config(rcv, sink) -> dict:
    raw = base_config(rcv, sink)
    raw["enterprise_names"] = {}
    raw["recipients"] = {
        "default": [{"name": "园区值班", "phones": ["13700000000"], "emails": ["ops@park.example.cn"],
                     "severities": ["critical"], "channels": ["sms", "email"]}],
        "enterprises": {"B": [
            {"name": "B 能源管理员", "phones": ["13900000009"], "emails": ["nengyuan@b.example.cn"],
             "severities": ["*"], "channels": ["sms", "email"]},
            {"name": "B manager", "emails": ["manager@b.example.com"], "severities": ["critical"], "locale": "en",
             "channels": ["email"], "resolved": False}]},
    }
    return raw


def runaway_day(svc) -> None:
    """B's meter, and the park's grid import it comes through, read EXTRA_KWH_PER_H more every hour of
    SPIKE_DAY (their counters stay higher after it); recalculated."""
    refs = [r for r in iter_points(svc.park) if r.id in ("m-b-elec.total", "m-grid.import")]
    enc, lines = PointEncoder(refs), []
    for ref in refs:
        q = (f'SELECT "total" FROM "{svc.client.database}"."raw"."electricity" WHERE "point" = \'{ref.id}\' '
             f"AND time >= '{SPIKE_DAY.tz_convert('UTC'):%Y-%m-%dT%H:%M:%SZ}'")
        for row in svc.client.rows(q, epoch="ns"):
            t = pd.Timestamp(row["time"], tz="UTC")
            extra = EXTRA_KWH_PER_H * min(24.0, (t - SPIKE_DAY) / pd.Timedelta(hours=1))
            lines.append(enc.encode(ref.id, row["total"] + extra, t.value))  # stored and encoded in kWh
    assert len(lines) > 48
    svc.client.write_lines(lines)
    job = svc.submit(SPIKE_DAY, ORIGIN, "runaway day", "pytest")
    svc._queue.clear()
    svc.run_job(job)
    assert job.state == "done", job.error


def test_a_budget_overrun_reaches_sms_and_email(forecast_app, receiver, smtp, start_bridge, tmp_path):  # noqa: F811
    svc = service_of(forecast_app)
    bridge = start_bridge(make_config(tmp_path, notify_config(receiver, smtp)))
    svc.settings = svc.settings.model_copy(update={"notify_url": bridge.url, "notify_token": TOKEN})
    client = forecast_app.test_client()
    monthly = [500.0] * 3 + [60.0] + [500.0] * 7 + [940.0]
    plan = client.post("/api/v1/budgets", headers={"X-Lingtan-User": "alice"}, json={
        "entity": "B", "year": 2026, "kind": "carbon", "annual": 6000.0, "rule": "manual", "monthly": monthly,
        "reason": "2026 碳排放控制目标"}).json["plan"]

    budget.evaluate(svc, now=pd.Timestamp("2026-04-04 00:15", tz=TZ))  # April: 1–4 April used, about 52 t of 60
    assert warning_notify.deliver_due(svc, FAR_FUTURE) == {"sent": 2, "retry": 0, "failed": 0}
    sms = [r.json["content"] for r in receiver.wait(2, path="/sms/send")]
    assert all("制造企业" in t for t in sms)
    used = next(t for t in sms if "预警线" in t)
    assert "告警（提示）｜制造企业：制造企业 2026-04 月度碳排放预算已用 8" in used and "达到 80.0% 预警线" in used
    projected = next(t for t in sms if "超出预算" in t)  # the month's projection is far above 60 t: critical
    assert "告警（严重）" in projected and "超出预算 60.0 tCO2" in projected and "模型 daily_workday" in projected
    mails = smtp.wait(3)  # B's manager (English) takes the critical one only
    english = smtp.by_rcpt()["manager@b.example.com"]
    assert "monthly CO2 projected at" in english["Subject"] and "above the budget of 60.0 tCO2" in english["Subject"]
    assert "ops@park.example.cn" not in {r for _f, rcpts, _m in mails for r in rcpts}  # the park's cap is not B's

    runaway_day(svc)
    budget.evaluate(svc, now=ORIGIN + pd.Timedelta(minutes=15))
    assert warning_notify.deliver_due(svc, FAR_FUTURE)["sent"] == 3  # escalated to critical; B's day; the park's day
    texts = [r.json["content"] for r in receiver.wait(4, path="/sms/send")[2:]]
    assert any("告警（严重）" in t and "月度碳排放预算已用" in t and "100.0% 预警线" in t for t in texts)
    day = next(t for t in texts if "远高于预测" in t)
    assert "制造企业 2026-04-05 碳排放" in day and "预测模型 daily_workday" in day
    with svc.sessions() as s:
        from lingtan_calc.adapters.warning_store import WarningRow
        b_day = s.query(WarningRow).filter_by(entity="B", rule="co2_above_forecast").one()
    assert b_day.value > 1.2 * b_day.forecast["projected"] and b_day.threshold == b_day.forecast["projected"] * 1.2

    # a second person moves 400 t from December to April: the month is back within its allocation
    moved = [*monthly[:3], 460.0, *monthly[4:11], 540.0]
    pid = client.post("/api/v1/budgets/proposals", headers={"X-Lingtan-User": "alice"}, json={
        "year": 2026, "kind": "carbon", "reason": "四月检修期间试生产", "changes": [
            {"plan_id": plan["id"], "monthly": moved}]}).json["id"]
    assert client.post(f"/api/v1/budgets/proposals/{pid}/approve", headers={"X-Lingtan-User": "bob"}).status_code == 200
    counts = budget.evaluate(svc, now=ORIGIN + pd.Timedelta(minutes=15))["warnings"]
    assert counts["resolved"] == 2  # April's consumption and its projection
    assert warning_notify.deliver_due(svc, FAR_FUTURE)["sent"] == 2
    resolved = [r.json["content"] for r in receiver.wait(6, path="/sms/send")[4:]]
    assert all(t.startswith("已恢复｜制造企业") for t in resolved)
