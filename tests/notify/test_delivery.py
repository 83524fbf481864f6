"""End to end: Grafana's webhook over HTTP into the bridge, out as SMS (a real HTTP receiver), e-mail (a real
SMTP server) and robot posts; routing by enterprise and severity; resolved messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import unquote_plus

from tests.notify.conftest import (
    DINGTALK_SECRET,
    SMS_TOKEN,
    SMTP_PASSWORD,
    SMTP_USER,
    base_config,
    make_config,
    payload,
    resolved,
)

E01_PHONES = {"13800000001", "13800000002"}


def test_sms_path_routes_each_enterprise_to_its_phones(tmp_path, receiver, smtp, start_bridge):
    bridge = start_bridge(make_config(tmp_path, base_config(receiver, smtp)))
    resp = bridge.post(payload())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # e01 critical: 2 enterprise phones + park duty (copy_all, critical) by SMS, 2 e-mails;
    # e02 warning: 1 phone, 1 e-mail (the manager and park duty only want critical)
    assert body["accepted"] is True and body["alerts"] == 2 and body["deliveries"] == 7 and body["unrouted"] == []

    sms = receiver.wait(4, path="/sms/send")
    by_phone = {r.json["mobile"]: r for r in sms}
    assert set(by_phone) == E01_PHONES | {"13700000000", "13900000001"}
    assert len(sms) == 4  # one SMS per phone and alert, no duplicates
    for r in sms:
        assert r.method == "POST" and r.headers["authorization"] == f"Bearer {SMS_TOKEN}"
        assert r.headers["content-type"].startswith("application/json")
        assert r.json["sign"] == "零碳园区"
    e01_text = ("告警（严重）｜华东精细化工有限公司：3号空压机功率超限。"
                "当前功率 132.5 kW，超过阈值 120 kW 已持续 5 分钟。开始于 03-02 10:15")
    for phone in E01_PHONES | {"13700000000"}:
        assert by_phone[phone].json["content"] == e01_text
        assert by_phone[phone].json["extra"] == {"alert": "空压机功率超限", "severity": "critical"}
    assert by_phone["13900000001"].json["content"] == (
        "告警（警告）｜江南纺织印染有限公司：2号染色线蒸汽单耗偏高。单耗 3.1 t/t，高于基准 2.6 t/t。开始于 03-02 10:20")

    done = bridge.wait_settled(7)
    assert {d["attempts"] for d in done} == {1}
    assert {(d["channel"], d["target"], d["enterprise"]) for d in done if d["channel"] == "sms"} == {
        ("sms", "13800000001", "e01"), ("sms", "13800000002", "e01"), ("sms", "13700000000", "e01"),
        ("sms", "13900000001", "e02")}


def test_email_path_sends_utf8_chinese_mail_to_each_recipient(tmp_path, smtp, start_bridge):
    bridge = start_bridge(make_config(tmp_path, base_config(None, smtp)))
    assert bridge.post(payload()).status_code == 200
    smtp.wait(3)
    mails = smtp.by_rcpt()
    assert set(mails) == {"energy@e01.example.cn", "ops@park.example.cn", "nengyuan@e02.example.cn"}
    assert len(smtp.messages) == 3 and all(len(rcpts) == 1 for _f, rcpts, _m in smtp.messages)
    assert {frm for frm, _r, _m in smtp.messages} == {"alerts@park.example.cn"}
    assert smtp.logins and set(smtp.logins) == {(SMTP_USER, SMTP_PASSWORD)}

    e01 = mails["energy@e01.example.cn"]
    assert e01["Subject"] == "[零碳告警] 严重｜华东精细化工有限公司：3号空压机功率超限"
    assert e01["To"] == "energy@e01.example.cn"
    assert e01["From"].addresses[0].display_name == "零碳平台告警"
    assert e01["From"].addresses[0].addr_spec == "alerts@park.example.cn"
    assert e01["X-Lingtan-Alert"] == "8d2a1c5e0f3b7a91"
    assert e01.get_content_charset() == "utf-8"
    text = e01.get_content()
    for line in ("告警已触发，请及时处理。", "企业：华东精细化工有限公司（e01）", "告警：空压机功率超限", "级别：严重",
                 "摘要：3号空压机功率超限", "详情：当前功率 132.5 kW，超过阈值 120 kW 已持续 5 分钟。",
                 "开始时间：2026-03-02 10:15:00", "数值：B = 132.5，C = 1",
                 "告警规则：http://grafana.park.local/alerting/grafana/cdf1x2/view?orgId=1",
                 "仪表板：http://grafana.park.local/d/energy-e01?orgId=1", "静默此告警：http://grafana.park.local/"):
        assert line in text, (line, text)
    assert "恢复时间" not in text
    assert mails["ops@park.example.cn"]["Subject"] == e01["Subject"]

    e02 = mails["nengyuan@e02.example.cn"]
    assert e02["Subject"] == "[零碳告警] 警告｜江南纺织印染有限公司：2号染色线蒸汽单耗偏高"
    assert "开始时间：2026-03-02 10:20:00" in e02.get_content()
    bridge.wait_settled(3)


def test_resolved_alerts_send_recovery_messages(tmp_path, receiver, smtp, start_bridge):
    bridge = start_bridge(make_config(tmp_path, base_config(receiver, smtp)))
    one = payload()
    one["alerts"] = one["alerts"][:1]
    assert bridge.post(one).status_code == 200
    receiver.wait(3)
    smtp.wait(2)
    bridge.wait_settled(5)

    resp = bridge.post(resolved(one, ends="2026-03-02T02:45:00Z"))
    assert resp.status_code == 200
    # park duty says resolved: false, so only the two e01 phones and the e01 address
    assert resp.json()["deliveries"] == 3
    sms = receiver.wait(5)[3:]
    assert {r.json["mobile"] for r in sms} == E01_PHONES
    for r in sms:
        assert r.json["content"] == "已恢复｜华东精细化工有限公司：3号空压机功率超限。恢复于 03-02 10:45，持续 30分钟"
    mail = smtp.wait(3)[2][2]
    assert mail["Subject"] == "[零碳告警] 已恢复｜华东精细化工有限公司：3号空压机功率超限"
    assert "告警已恢复。" in mail.get_content() and "恢复时间：2026-03-02 10:45:00（持续 30分钟）" in mail.get_content()
    assert "静默此告警" not in mail.get_content()
    done = bridge.wait_settled(8)
    assert sorted(d["alert_status"] for d in done) == ["firing"] * 5 + ["resolved"] * 3


def test_severity_routing_and_english_recipients(tmp_path, smtp, start_bridge):
    bridge = start_bridge(make_config(tmp_path, base_config(None, smtp)))
    warn = payload()
    warn["alerts"] = warn["alerts"][1:]  # e02 warning
    assert bridge.post(warn).json()["deliveries"] == 1
    smtp.wait(1)
    assert set(smtp.by_rcpt()) == {"nengyuan@e02.example.cn"}  # the critical-only groups got nothing

    crit = payload()
    crit["alerts"] = crit["alerts"][1:]
    crit["alerts"][0]["labels"]["severity"] = "critical"
    crit["alerts"][0]["fingerprint"] = "41f0e9d2c3b4a5f7"
    assert bridge.post(crit).json()["deliveries"] == 3
    smtp.wait(4)
    mails = [m for _f, rcpts, m in smtp.messages[1:]]
    assert sorted(r for _f, rcpts, _m in smtp.messages[1:] for r in rcpts) == [
        "manager@e02.example.com", "nengyuan@e02.example.cn", "ops@park.example.cn"]
    english = next(m for m in mails if m["To"] == "manager@e02.example.com")
    assert english["Subject"] == "[Lingtan alert] Critical | 江南纺织印染有限公司: 2号染色线蒸汽单耗偏高"
    assert "An alert is firing; please check." in english.get_content()
    assert "Enterprise: 江南纺织印染有限公司 (e02)" in english.get_content()

    # an alert of an enterprise with no groups of its own goes to the default groups (if the severity fits)
    other = payload()
    other["alerts"] = other["alerts"][:1]
    other["alerts"][0]["labels"]["enterprise"] = "e09"
    other["alerts"][0]["labels"]["severity"] = "info"
    resp = bridge.post(other)
    assert resp.status_code == 200 and resp.json()["deliveries"] == 0
    assert resp.json()["unrouted"] == ["8d2a1c5e0f3b7a91"]  # recorded, logged, nobody told
    bridge.wait_settled(4)


def test_dingtalk_and_wecom_robots(tmp_path, receiver, start_bridge):
    raw = base_config(receiver, None)
    raw["providers"]["dingtalk"] = {"url": f"{receiver.url}/robot/send?access_token=dt-token",
                                    "secret_env": "TEST_DINGTALK_SECRET"}
    raw["providers"]["wecom"] = {"url": f"{receiver.url}/cgi-bin/webhook/send?key=wc-key"}
    raw["recipients"] = {"default": [{"name": "园区群", "channels": ["dingtalk", "wecom"]},
                                     {"name": "再次", "channels": ["dingtalk"]}]}  # same robot once per alert
    receiver.default = (200, {"errcode": 0, "errmsg": "ok"})
    bridge = start_bridge(make_config(tmp_path, raw))
    assert bridge.post(payload()).json()["deliveries"] == 4

    ding = receiver.wait(2, path="/robot/send")
    for r in ding:
        assert r.query["access_token"] == "dt-token"
        expected = base64.b64encode(hmac.new(DINGTALK_SECRET.encode(), f"{r.query['timestamp']}\n{DINGTALK_SECRET}"
                                             .encode(), hashlib.sha256).digest()).decode()
        assert unquote_plus(r.query["sign"]) == expected or r.query["sign"] == expected
        assert r.json["msgtype"] == "markdown"
    titles = sorted(r.json["markdown"]["title"] for r in ding)
    assert titles == ["[零碳告警] 严重｜华东精细化工有限公司：3号空压机功率超限",
                      "[零碳告警] 警告｜江南纺织印染有限公司：2号染色线蒸汽单耗偏高"]
    assert any("- 企业：华东精细化工有限公司" in r.json["markdown"]["text"] for r in ding)

    wecom = receiver.wait(2, path="/cgi-bin/webhook/send")
    assert {r.query["key"] for r in wecom} == {"wc-key"}
    assert all(r.json["msgtype"] == "markdown" and r.json["markdown"]["content"].startswith("### [零碳告警]")
               for r in wecom)
    bridge.wait_settled(4)


def test_robot_errcode_is_a_failed_attempt(tmp_path, receiver, start_bridge):
    raw = base_config(receiver, None)
    raw["providers"]["wecom"] = {"url": f"{receiver.url}/cgi-bin/webhook/send?key=wc-key"}
    raw["recipients"] = {"default": [{"name": "群", "channels": ["wecom"]}]}
    receiver.script = [(200, {"errcode": 93000, "errmsg": "invalid webhook url"})]
    receiver.default = (200, {"errcode": 0, "errmsg": "ok"})
    one = payload()
    one["alerts"] = one["alerts"][:1]
    bridge = start_bridge(make_config(tmp_path, raw))
    assert bridge.post(one).json()["deliveries"] == 1
    [d] = bridge.wait_settled(1)
    assert d["attempts"] == 2 and len(receiver.wait(2)) == 2
