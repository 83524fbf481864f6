"""Budgets on a live InfluxDB: plans and their bad input, the standing against the accounted days,
four-eyes reallocations with their versions, and the daily evaluation of the warnings.

The park and its 35 days (2026-03-02 .. 2026-04-06) are those of tests/calc/test_forecast.py:
enterprise B takes a flat 800 kWh of electricity and 300 kg of steam every hour.
"""

from __future__ import annotations

import pandas as pd
import pytest

from lingtan_calc.adapters import budget_store, warning_store
from lingtan_calc.adapters.energy_reads import totals_rows
from lingtan_calc.adapters.forecast_series import outturn_line, write_forecast_lines
from lingtan_calc.service import budget
from lingtan_calc.service.scheduler import service_of
from tests.calc.test_forecast import ORIGIN, START, forecast_app  # noqa: F401 - the fixture

TZ = "Asia/Shanghai"
AT = ORIGIN + pd.Timedelta(minutes=15)  # 2026-04-06 00:15, the daily pass
B_DAY_TCE = 800 * 24 * 0.1229e-3  # B's electricity a day [tce]; its steam is added in the test


def _plan(client, user: str = "alice", **body):
    base = {"entity": "B", "year": 2026, "kind": "energy", "annual": 1000.0, "rule": "equal",
            "reason": "2026 年节能目标责任书"}
    return client.post("/api/v1/budgets", json={**base, **body}, headers={"X-Lingtan-User": user})


def _days(svc, entity: str, field: str, start: pd.Timestamp, end: pd.Timestamp) -> float:
    rows = totals_rows(svc.client, "ex2", "day", start, end, entity, [field], "dangliang")
    return float(rows[field].sum())


BAD_PLANS = [
    ({"annual": -100}, 400, "annual", "must be a positive number"),
    ({"rule": "manual", "monthly": [80] * 12}, 400, "monthly", "adds up to 960, not the annual 1000"),
    ({"entity": "nowhere"}, 404, "entity", "is not 'park' or an enterprise"),
    ({"kind": "water"}, 400, "kind", "is not one of energy, carbon"),
    ({"year": "2026"}, 400, "year", "is not a year"),
    ({"reason": " "}, 400, "reason", "state why"),
    ({"rule": "last_year"}, 422, "rule", "none is accounted for 2025-01"),
    ({"rule": "production_plan", "weights": [1] * 11 + [-1]}, 400, "weights.11", "is negative"),
    ({"counting": {"scope2": "market"}}, 400, "counting.scope2", "counts with feedstock, renewables"),
    ({"targets": [{"indicator": "carbon_per_output_value", "target": 1}]}, 400, "targets.0.indicator", "energy_per"),
    ({"targets": [{"indicator": "energy_per_product", "target": 1}]}, 400, "targets.0.product", "names its product"),
    ({"cap": 5}, 400, "cap", "unknown field"),
    ({"kind": []}, 400, "kind", "is not one of"),
    ({"annual": 10**400}, 400, "annual", "must be a positive number"),
    ({"rule": "manual", "monthly": [10**400] * 12}, 400, "monthly.0", "is not a finite number"),
    ({"targets": [{"indicator": "energy_per_value_added", "target": 10**400}]}, 400, "targets.0.target", "positive"),
    ({"targets": [{"indicator": "energy_per_value_added", "target": 1}] * 2}, 400, "targets.1.indicator", "already"),
    ({"rule": "equal", "weights": [float("nan")] * 12}, 400, "weights", "production_plan"),
    ({"rule": "days", "monthly": [1] * 12}, 400, "monthly", "rule manual"),
    ({"rule": ["equal"]}, 400, "rule", "is not one of"),
]


def test_bad_plans_change_nothing(forecast_app) -> None:  # noqa: F811
    client = forecast_app.test_client()
    for changes, status, field, text in BAD_PLANS:
        r = _plan(client, **changes)
        assert r.status_code == status, (changes, r.json)
        assert r.json["error"]["field"] == field and text in r.json["error"]["message"], (changes, r.json)
    with service_of(forecast_app).sessions() as s:
        assert budget_store.active_plans(s) == []
    for path in ("/api/v1/budgets?entity=B&year=%C2%B2", "/api/v1/budgets/history?entity=B&year=%C2%B2&kind=energy"):
        assert client.get(path).json["error"]["field"] == "year"
    huge = 10**30
    assert client.get(f"/api/v1/budgets/proposals/{huge}").status_code == 404
    assert client.post(f"/api/v1/budgets/proposals/{huge}/approve", json={}).status_code == 404
    r = client.post("/api/v1/budgets/proposals", json={"year": 2026, "kind": "energy", "reason": "x", "changes": [
        {"plan_id": huge, "monthly": [1] * 12}]})
    assert r.status_code == 400 and r.json["error"]["field"] == "changes[0].plan_id"


def test_a_plan_stands_against_the_accounted_days(forecast_app) -> None:  # noqa: F811
    client, svc = forecast_app.test_client(), service_of(forecast_app)
    r = _plan(client, rule="days", targets=[{"indicator": "energy_per_value_added", "target": 0.05}])
    assert r.status_code == 201, r.json
    assert r.json["plan"]["monthly"][0] == pytest.approx(1000 * 31 / 365) and r.json["plan"]["version"] == 1
    assert r.json["plan"]["counting"] == {"renewables": "exclude", "feedstock": "exclude"}
    again = _plan(client)
    assert again.status_code == 409 and "change it with a proposal" in again.json["error"]["message"]
    body = client.get("/api/v1/budgets", query_string={"entity": "B", "at": AT.isoformat()}).json
    (b,) = body["budgets"]
    year, month = b["periods"]
    ytd = _days(svc, "B", "comprehensive_tce", START, ORIGIN)
    # 35 whole days of B; electricity at 0.1229 kgce/kWh is most of it (steam adds its heat)
    assert ytd == pytest.approx(35 * B_DAY_TCE + 35 * 24 * 0.3 * (2777.1 - 83.74) * 0.03412e-3, rel=1e-6)
    assert year["actual"] == pytest.approx(ytd, rel=1e-9) and year["remaining"] == pytest.approx(1000 - ytd)
    # every day of B is the same: the projection is the actual plus the same day for the 269.99 days to come
    per_day = ytd / 35
    assert year["days_left"] == pytest.approx(270 - 15 / 1440)
    assert year["projected"] == pytest.approx(ytd + year["days_left"] * per_day, rel=1e-6)
    assert year["remaining_per_day"] == pytest.approx((1000 - ytd) / year["days_left"])
    assert month["period_start"].startswith("2026-04-01") and month["actual"] == pytest.approx(5 * per_day, rel=1e-6)
    assert [m["month"] for m in b["months"]][:4] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert b["months"][2]["actual"] == pytest.approx(30 * per_day, rel=1e-6)  # 2 .. 31 March
    assert sum(b["respread"]) == pytest.approx(1000.0) and b["respread"][:3] == pytest.approx(
        [0.0, 0.0, 30 * per_day], rel=1e-6)
    (target,) = b["intensities"]
    assert target["months"] == 0 and target["value"] is None  # no production data: nothing to compare


def test_reallocations_need_a_second_person_and_keep_every_version(forecast_app) -> None:  # noqa: F811
    client, svc = forecast_app.test_client(), service_of(forecast_app)
    b = _plan(client).json["plan"]
    a = _plan(client, entity="A", annual=500.0).json["plan"]
    alice, bob = {"X-Lingtan-User": "alice"}, {"X-Lingtan-User": "bob"}
    months = [60.0] * 6 + [100.0] * 6  # 960: not the cap of 1000
    bad = client.post("/api/v1/budgets/proposals", headers=alice, json={
        "year": 2026, "kind": "energy", "reason": "夏季检修", "changes": [{"plan_id": b["id"], "monthly": months}]})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "changes[0].monthly"
    months = [60.0] * 6 + [(1000 - 360) / 6] * 6
    moved = client.post("/api/v1/budgets/proposals", headers=alice, json={
        "year": 2026, "kind": "energy", "reason": "上半年检修，下半年满产", "changes": [{"plan_id": b["id"], "monthly": months}]})
    assert moved.status_code == 201 and moved.json["status"] == "pending"
    pid = moved.json["id"]
    own = client.post(f"/api/v1/budgets/proposals/{pid}/approve", headers=alice, json={})
    assert own.status_code == 409 and "four-eyes" in own.json["error"]["message"]
    rival = client.post("/api/v1/budgets/proposals", headers=alice, json={
        "year": 2026, "kind": "energy", "reason": "另一方案", "type": "revision",
        "changes": [{"plan_id": b["id"], "annual": 1200.0, "monthly": [100.0] * 12}]}).json
    ok = client.post(f"/api/v1/budgets/proposals/{pid}/approve", headers=bob, json={"reason": "同意"})
    assert ok.status_code == 200 and ok.json["status"] == "approved" and ok.json["decided_by"] == "bob"
    stale = client.post(f"/api/v1/budgets/proposals/{rival['id']}/approve", headers=bob, json={})
    assert stale.status_code == 409 and "stale" in stale.json["error"]["message"]
    assert client.post(f"/api/v1/budgets/proposals/{pid}/reject", headers=bob, json={}).status_code == 409
    versions = client.get("/api/v1/budgets/history?entity=B&year=2026&kind=energy").json["versions"]
    assert [(v["version"], v["status"], v["approved_by"]) for v in versions] == [
        (1, "superseded", None), (2, "active", "bob")]
    assert versions[1]["monthly"][:6] == [60.0] * 6 and versions[1]["annual"] == 1000.0
    b2 = versions[1]["id"]
    # between enterprises: A gives B 50 tce; the total stays, so a reallocation; more is a revision
    grow = client.post("/api/v1/budgets/proposals", headers=alice, json={
        "year": 2026, "kind": "energy", "reason": "x", "changes": [
            {"plan_id": a["id"], "annual": 450.0, "monthly": [37.5] * 12},
            {"plan_id": b2, "annual": 1100.0, "monthly": [60.0] * 6 + [740 / 6] * 6}]})
    assert grow.status_code == 400 and "from 1500 to 1550" in grow.json["error"]["message"]
    creep = client.post("/api/v1/budgets/proposals", headers=alice, json={  # 0.0059 t more: still not a reallocation
        "year": 2026, "kind": "energy", "reason": "x", "changes": [
            {"plan_id": a["id"], "annual": 450.0059, "monthly": [37.5] * 11 + [37.5059]},
            {"plan_id": b2, "annual": 1050.0, "monthly": [60.0] * 6 + [690 / 6] * 6}]})
    assert creep.status_code == 400 and "keeps the total" in creep.json["error"]["message"]
    swap = client.post("/api/v1/budgets/proposals", headers=bob, json={
        "year": 2026, "kind": "energy", "reason": "A 产能转移至 B", "changes": [
            {"plan_id": a["id"], "annual": 450.0, "monthly": [37.5] * 12},
            {"plan_id": b2, "annual": 1050.0, "monthly": [60.0] * 6 + [690 / 6] * 6}]})
    assert swap.status_code == 201 and swap.json["entities"] == ["A", "B"]
    no_reason = client.post(f"/api/v1/budgets/proposals/{swap.json['id']}/reject", headers=alice, json={})
    assert no_reason.status_code == 400 and no_reason.json["error"]["field"] == "reason"
    assert client.post(f"/api/v1/budgets/proposals/{swap.json['id']}/approve", headers=alice).status_code == 200
    with svc.sessions() as s:
        caps = {p.entity: (p.annual, p.version) for p in budget_store.active_plans(s, year=2026)}
    assert caps == {"A": (450.0, 2), "B": (1050.0, 3)}
    listed = client.get("/api/v1/budgets/proposals?status=all").json["proposals"]
    assert [p["status"] for p in listed] == ["approved", "pending", "approved"]


def test_the_daily_evaluation_writes_the_series_and_opens_warnings(forecast_app) -> None:  # noqa: F811
    client, svc = forecast_app.test_client(), service_of(forecast_app)
    assert _plan(client, annual=100.0).status_code == 201  # far below B's ~2.9 tce a day
    assert _plan(client, entity="park", kind="carbon", annual=1e6).status_code == 201  # far above
    # the day-end CO₂ forecast the forecast pass issued for B on 5 April (B emits about 13 t a day)
    issued = pd.Timestamp("2026-04-05 00:15", tz=TZ)
    write_forecast_lines(svc.client, [outturn_line("ex2", "B", "co2_t", "day", issued.normalize(), "daily_workday", {
        "actual_to_date": 0.1, "forecast_rest": 4.9, "projected": 5.0, "lower": 4.0, "upper": 6.0}, issued)])
    summary = budget.evaluate(svc, now=AT)
    assert summary["plans"] == 2 and summary["warnings"]["opened"] >= 4
    with svc.sessions() as s:
        firing = {(w.entity, w.rule, w.subject): w for w in warning_store.listed(s, None, "firing")}
    used = firing[("B", "budget_used", "energy:year:2026")]
    assert used.level == "critical" and used.threshold == 1.0  # > 100 % of the year's cap by April
    assert firing[("B", "budget_used", "energy:month:2026-04")].level == "critical"
    projected = firing[("B", "budget_projected", "energy:year:2026")]
    assert projected.level == "critical" and projected.forecast["model"] == "daily_workday"
    assert "制造企业 2026 年度能耗预计" in projected.texts["summary_zh"]
    assert not [k for k in firing if k[0] == "park" and k[1].startswith("budget")]  # the park's cap is far off
    day = firing[("B", "co2_above_forecast", "co2:day")]
    assert day.forecast == {"model": "daily_workday", "issued": issued.isoformat(), "projected": 5.0, "lower": 4.0,
                            "upper": 6.0} and day.threshold == 6.0 and day.value > 12
    assert ("park", "co2_above_forecast", "co2:day") not in firing  # none issued: computed, and the day is normal
    rows = svc.client.rows(f'SELECT * FROM "{svc.client.database}"."accounting"."budget_tracking" '
                           "WHERE \"entity\" = 'B' GROUP BY \"period\"")
    assert {r["period"] for r in rows} == {"year", "month"}
    year = next(r for r in rows if r["period"] == "year")
    assert year["plan"] == 100.0 and year["used_share"] > 1.0
    # evaluated again: nothing new, nothing twice
    again = budget.evaluate(svc, now=AT)
    assert again["warnings"]["opened"] == 0 and again["warnings"]["updated"] == summary["warnings"]["opened"]
    body = client.get("/api/v1/warnings?entity=B&lang=en").json
    assert body["warnings"][0]["level"] == "critical" and "budget" in body["warnings"][0]["summary"]
    assert client.get("/api/v1/warnings?status=open").json["error"]["field"] == "status"
