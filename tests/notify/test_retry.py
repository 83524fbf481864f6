"""Retries with backoff, giving up after max attempts without losing anything, and resuming after a restart."""

from __future__ import annotations

import time

from tests.notify.conftest import base_config, make_config, payload

ONE_PHONE = {"default": [{"name": "值班", "phones": ["13700000000"], "channels": ["sms"]}]}


def _one_alert() -> dict:
    p = payload()
    p["alerts"] = p["alerts"][:1]
    return p


def _config(tmp_path, receiver, sms_timeout_s: float = 2, **retry):
    raw = base_config(receiver, None)
    raw["providers"]["sms"]["timeout_s"] = sms_timeout_s
    raw["recipients"] = ONE_PHONE
    raw["retry"].update(retry)
    return make_config(tmp_path, raw)


def test_provider_errors_are_retried_with_backoff_until_delivered(tmp_path, receiver, start_bridge):
    receiver.script = [(500, {"code": 500, "msg": "内部错误"}), (500, {"code": 500, "msg": "内部错误"})]
    bridge = start_bridge(_config(tmp_path, receiver, backoff_base_s=0.05, backoff_max_s=1))
    assert bridge.post(_one_alert()).status_code == 200
    [d] = bridge.wait_settled(1)
    assert d["status"] == "delivered" and d["attempts"] == 3 and d["last_error"] is None
    sent = receiver.wait(3)
    assert len(sent) == 3 and {r.json["mobile"] for r in sent} == {"13700000000"}
    assert len({r.json["content"] for r in sent}) == 1  # the same message each time
    # exponential backoff: ~0.05 s after attempt 1, ~0.1 s after attempt 2
    gaps = [b.at - a.at for a, b in zip(sent, sent[1:], strict=False)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09, gaps


def test_max_attempts_marks_failed_and_keeps_everything(tmp_path, receiver, start_bridge):
    # HTTP 200 but the provider's JSON says no: the success check makes it a failed attempt
    receiver.default = (200, {"code": 15, "msg": "余额不足"})
    bridge = start_bridge(_config(tmp_path, receiver, max_attempts=3))
    resp = bridge.post(_one_alert())
    assert resp.status_code == 200
    [d] = bridge.wait_settled(1, status="failed")
    assert d["attempts"] == 3 and len(receiver.wait(3)) == 3
    assert "余额不足" in d["last_error"] and "code = 15" in d["last_error"]
    assert d["body"].startswith("告警（严重）｜华东精细化工有限公司") and d["target"] == "13700000000"
    time.sleep(0.2)
    assert len(receiver.requests) == 3  # no 4th attempt
    health = bridge.get("/health", token=None).json()
    assert health["queue"] == {"pending": 0, "sending": 0, "delivered": 0, "failed": 1}

    # never lost: an operator puts it back once the provider is fixed
    receiver.default = (200, {"code": 0, "msg": "OK"})
    again = bridge.get(f"/deliveries/{d['id']}").json()
    assert again["status"] == "failed" and again["notification_id"] == resp.json()["notification_id"]
    r = bridge.call("POST", f"/deliveries/{d['id']}/retry")
    assert r.status_code == 200 and r.json()["status"] in ("pending", "sending", "delivered")
    [d2] = bridge.wait_settled(1)
    assert d2["id"] == d["id"] and d2["attempts"] == 1


def test_restart_resumes_pending_deliveries(tmp_path, receiver, start_bridge):
    cfg = _config(tmp_path, receiver)
    db = tmp_path / "queue.db"
    first = start_bridge(cfg, db=db, start_worker=False)  # accepts, then "crashes" before delivering
    resp = first.post(_one_alert())
    assert resp.status_code == 200 and resp.json()["deliveries"] == 1
    assert [d["status"] for d in first.deliveries()] == ["pending"]
    first.close()
    assert receiver.requests == []

    second = start_bridge(cfg, db=db)  # a new app over the same SQLite file
    [d] = second.wait_settled(1)
    assert d["attempts"] == 1 and d["notification_id"] == resp.json()["notification_id"]
    assert [r.json["mobile"] for r in receiver.wait(1)] == ["13700000000"]


def test_delivery_leased_by_a_dead_worker_is_retried_after_the_lease(tmp_path, receiver, start_bridge):
    cfg = _config(tmp_path, receiver, sms_timeout_s=0.25, lease_s=0.3)
    db = tmp_path / "queue.db"
    first = start_bridge(cfg, db=db, start_worker=False)
    assert first.post(_one_alert()).status_code == 200
    claimed = first.bridge.queue.claim_due(10, cfg.retry.lease_s)  # a worker took it ... and died mid-send
    assert len(claimed) == 1 and claimed[0].attempt == 1
    first.close()

    second = start_bridge(cfg, db=db)
    assert second.deliveries()[0]["status"] == "sending"  # still leased
    [d] = second.wait_settled(1, timeout=10)
    assert d["attempts"] == 2 and len(receiver.wait(1)) == 1
