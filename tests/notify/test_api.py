"""The webhook's guard: bearer token, payload validation (400 naming the field), the JSON error format."""

from __future__ import annotations

import requests

from tests.notify.conftest import TOKEN, base_config, make_config, payload


def _error(resp: requests.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    err = resp.json()["error"]
    assert err["status"] == status and err["code"] == code and err["message"]
    return err


def test_webhook_refuses_requests_without_the_bearer_token(tmp_path, receiver, start_bridge):
    bridge = start_bridge(make_config(tmp_path, base_config(receiver, None)))
    missing = bridge.post(payload(), token=None)
    _error(missing, 401, "unauthorized")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    _error(bridge.post(payload(), token="not-the-token-0123456789"), 401, "unauthorized")
    _error(bridge.post(payload(), token=TOKEN[:-1]), 401, "unauthorized")
    basic = requests.post(f"{bridge.url}/api/v1/grafana", json=payload(), auth=("grafana", TOKEN), timeout=10)
    _error(basic, 401, "unauthorized")
    # the operators' endpoints need it too; health does not
    _error(bridge.get("/deliveries", token=None), 401, "unauthorized")
    _error(bridge.get("/deliveries", token="wrong-token-0123456789"), 401, "unauthorized")
    health = bridge.get("/health", token=None)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["queue"]["pending"] == 0 and health.json()["channels"] == ["sms"]
    # nothing was queued, nothing sent
    assert bridge.deliveries() == [] and receiver.requests == []
    # PUT (Grafana's other method) with the token works
    ok = requests.put(f"{bridge.url}/api/v1/grafana", json=payload(), headers={"Authorization": f"bearer {TOKEN}"},
                      timeout=10)
    assert ok.status_code == 200 and ok.json()["deliveries"] == 4


def test_malformed_payloads_get_400_naming_the_field(tmp_path, receiver, start_bridge):
    bridge = start_bridge(make_config(tmp_path, base_config(receiver, None)))

    bad = payload()
    bad["alerts"][1]["status"] = "exploded"
    err = _error(bridge.post(bad), 400, "invalid_payload")
    assert err["field"] == "alerts.1.status" and "'exploded'" in err["message"]

    no_alerts = payload()
    del no_alerts["alerts"]
    assert _error(bridge.post(no_alerts), 400, "invalid_payload")["field"] == "alerts"
    assert _error(bridge.post(payload(alerts=[])), 400, "invalid_payload")["field"] == "alerts"

    labels = payload()
    labels["alerts"][0]["labels"] = ["severity=critical"]
    assert _error(bridge.post(labels), 400, "invalid_payload")["field"] == "alerts.0.labels"

    when = payload()
    when["alerts"][0]["startsAt"] = "yesterday"
    assert _error(bridge.post(when), 400, "invalid_payload")["field"] == "alerts.0.startsAt"

    assert _error(bridge.post(payload(status="pending")), 400, "invalid_payload")["field"] == "status"

    not_json = requests.post(f"{bridge.url}/api/v1/grafana", data="status=firing",
                             headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}, timeout=10)
    _error(not_json, 400, "bad_json")
    _error(bridge.post(["not", "an", "object"]), 400, "bad_json")
    assert bridge.deliveries() == []  # a refused payload leaves nothing behind

    # unknown fields from newer Grafana versions are accepted and kept
    extra = payload(newField={"x": 1})
    extra["alerts"][0]["imageURL"] = "http://grafana.park.local/img/1.png"
    resp = bridge.post(extra)
    assert resp.status_code == 200
    note = resp.json()["notification_id"]
    stored = bridge.bridge.queue.notification(note).payload
    assert stored["newField"] == {"x": 1} and stored["alerts"][0]["imageURL"].endswith("1.png")


def test_operator_endpoints(tmp_path, receiver, start_bridge):
    bridge = start_bridge(make_config(tmp_path, base_config(receiver, None)), start_worker=False)
    note = bridge.post(payload()).json()["notification_id"]
    rows = bridge.deliveries(status="pending")
    assert len(rows) == 4 and {r["notification_id"] for r in rows} == {note}
    assert bridge.deliveries(status="delivered") == []
    assert len(bridge.deliveries(notification=note, limit=2)) == 2
    assert bridge.get("/health", token=None).json()["status"] == "degraded"  # no worker running
    err = _error(bridge.get("/deliveries", status="lost"), 400, "bad_status")
    assert err["field"] == "status" and "pending, sending, delivered, failed" in err["message"]
    assert _error(bridge.get("/deliveries", limit="0"), 400, "bad_limit")["field"] == "limit"
    _error(bridge.get("/deliveries/999999"), 404, "not_found")
    _error(bridge.call("POST", "/deliveries/999999/retry"), 404, "not_found")
    _error(bridge.get("/nowhere"), 404, "not_found")
    _error(bridge.call("DELETE", "/grafana"), 405, "method_not_allowed")
