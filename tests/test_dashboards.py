"""Dashboards and alert rules as code: the committed files are what the generator writes, and every panel query
and every variable query returns rows from InfluxDB filled by the running demo park (`lingtan up`).

Grafana itself runs only in docker-compose (DEVELOPERS.md decision 3); the queries are expanded here the way
Grafana's InfluxDB datasource expands them (lingtan_grafana.influxql.interpolate).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml

from lingtan.influxdb import InfluxClient
from lingtan.settings import load_settings
from lingtan_grafana.build import REPO, build
from lingtan_grafana.influxql import DATASOURCE_UID, interpolate
from lingtan_tools.stack.services import free_port

DASHBOARDS = sorted((REPO / "dashboards").glob("*.json"))
ALL = [".*"]
VARIABLES = {"park": ["jsdemo"], "enterprise": ALL, "unit": ALL, "meter": ALL, "carrier": ALL}
TZ = ZoneInfo("Asia/Shanghai")


def test_committed_files_are_what_the_generator_writes():
    assert build(check=True) == [], "run `lingtan dashboards build` and commit the result"


def test_dashboards_are_provisioned_read_only_with_the_fixed_datasource():
    assert {p.stem for p in DASHBOARDS} == {"park-overview", "realtime", "energy", "carbon", "energy-flow",
                                            "data-quality", "analysis", "budget"}
    uids = set()
    for path in DASHBOARDS:
        d = json.loads(path.read_text(encoding="utf-8"))
        assert d["editable"] is False and d["timezone"] == "Asia/Shanghai"
        uids.add(d["uid"])
        assert [v["name"] for v in d["templating"]["list"]] == ["park", "enterprise", "unit", "meter", "carrier"]
        for panel in d["panels"]:
            for t in panel.get("targets", []):
                assert t["datasource"]["uid"] == DATASOURCE_UID and t["rawQuery"] is True
    assert len(uids) == len(DASHBOARDS)
    ds = yaml.safe_load((REPO / "grafana/provisioning/datasources/influxdb.yaml").read_text(encoding="utf-8"))
    assert ds["datasources"][0]["uid"] == DATASOURCE_UID and ds["datasources"][0]["editable"] is False
    assert "password" not in ds["datasources"][0] and "${" in ds["datasources"][0]["secureJsonData"]["password"]


def _time_filter(expr: str) -> str:
    """A Grafana relative range start (now-6h, now/d, 5m) as an InfluxQL time condition."""
    if expr.startswith("now/d"):
        midnight = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        return f"time >= '{midnight.isoformat()}'"
    return f"time > now() - {expr.removeprefix('now-')}"


@pytest.fixture(scope="module")
def demo_park(tmp_path_factory):
    """`lingtan up` on free ports; production data for this month imported as an ERP would; then wait until the
    calc-service has written every derived series the dashboards read."""
    state = tmp_path_factory.mktemp("demo") / "var"
    env = {**os.environ, "LINGTAN_STATE_DIR": str(state), "LINGTAN_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
           "LINGTAN_MQTT_PORT": str(free_port()), "LINGTAN_OPCUA_ENDPOINT": f"opc.tcp://127.0.0.1:{free_port()}",
           "LINGTAN_MODBUS_PORT": str(free_port()), "LINGTAN_CALC_PORT": str(free_port()),
           "LINGTAN_PROXY_PORT": str(free_port()), "LINGTAN_PROXY_HTTP_PORT": "0"}
    run = [sys.executable, "-m", "lingtan.cli"]
    up = subprocess.run([*run, "up", "--wait", "60"], env=env, capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        settings = load_settings(state_dir=state, influx_url=env["LINGTAN_INFLUX_URL"])
        calc = f"http://127.0.0.1:{env['LINGTAN_CALC_PORT']}/api/v1"
        month = datetime.now(TZ).strftime("%Y-%m-01")
        rows = [{"enterprise": e["id"], "period_type": "month", "period_start": month, "output_value": 1000.0 * (i + 1),
                 "value_added": 300.0 * (i + 1)}
                for i, e in enumerate(requests.get(f"{calc}/entities", timeout=10).json()) if e["type"] == "enterprise"]
        r = requests.post(f"{calc}/production", json={"rows": rows}, timeout=30, headers={"X-Lingtan-User": "pytest"})
        assert r.status_code == 201, r.text
        client = InfluxClient.from_settings(settings)
        _meter_glitch(client, settings)
        deadline = time.monotonic() + 420
        needed = ("acc_totals", "acc_carrier", "acc_emission", "acc_intensity", "acc_flow", "acc_node",
                  "budget_tracking", "forecast_check", "forecast_skill", "forecast_load", "budget_intensity")
        evaluated = False
        while time.monotonic() < deadline:
            have = {m for m in needed if client.series(f'SELECT count(*) FROM "accounting"."{m}" '
                                                       "WHERE time > now() - 800d")}
            if not evaluated and {"acc_intensity", "budget_tracking"} <= have:
                # the demo budgets are set after the backfill; with this month's production now accounted, the
                # budgets' intensity targets are evaluated as the daily pass would (docs/budget.md)
                r = requests.post(f"{calc}/warnings/evaluate", json={}, timeout=120)
                assert r.status_code == 200, r.text
                evaluated = True
            quality = client.series('SELECT count("count") FROM "data_quality" WHERE time > now() - 1h')
            glitch = client.series('SELECT count("count") FROM "data_quality" WHERE time > now() - 1h '
                                   "AND \"reason\" = 'implausible_consumption'")
            if have == set(needed) and quality and glitch:
                break
            time.sleep(5)
        yield client
    finally:
        subprocess.run([*run, "down"], env=env, capture_output=True, text=True, timeout=120)


def _meter_glitch(client: InfluxClient, settings) -> None:
    """One reading 10 GWh too high, as a meter with a corrupted register sends it: the calc-service
    quarantines the interval, and the data-quality board lists it."""
    from lingtan.park import load_park
    from lingtan.park.index import iter_points
    from lingtan.series import PointEncoder

    refs = iter_points(load_park(settings.park_file))
    point = "m-e04-wh-l1.total"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        last = client.series(f'SELECT last("total") FROM "electricity" WHERE "point" = \'{point}\'', epoch="ns")
        if last:
            break
        time.sleep(2)
    value = last[0]["values"][0][1]
    # after the meter's last reading, as the last reading of this minute (the calc-service reads the last
    # reading of each minute), so that the interval from the true reading before it is seen
    minute_end = (time.time_ns() // 60_000_000_000 + 1) * 60_000_000_000
    client.write_lines([PointEncoder(refs).encode(point, value + 1e7, minute_end - 1)])


def _targets():
    for path in DASHBOARDS:
        d = json.loads(path.read_text(encoding="utf-8"))
        for panel in d["panels"]:
            for t in panel.get("targets", []):
                yield pytest.param(d["time"]["from"], panel.get("timeFrom"), t["query"],
                                   id=f"{path.stem}:{panel['title'][:30]}:{t['refId']}")


@pytest.mark.slow
@pytest.mark.parametrize(("board_from", "panel_from", "query"), list(_targets()))
def test_every_panel_query_returns_rows(demo_park, board_from, panel_from, query):
    q = interpolate(query, VARIABLES, time_filter=_time_filter(panel_from or board_from), interval="1m")
    deadline = time.monotonic() + 90  # a series written on the calc-service's next cycle may still be coming
    while True:
        series = demo_park.series(q)
        if any(s.get("values") for s in series) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert any(s.get("values") for s in series), q


@pytest.mark.slow
@pytest.mark.parametrize("name", ["park", "enterprise", "unit", "meter", "carrier"])
def test_every_variable_query_returns_rows(demo_park, name):
    d = json.loads(DASHBOARDS[0].read_text(encoding="utf-8"))
    var = next(v for v in d["templating"]["list"] if v["name"] == name)
    values = [v[1] for s in demo_park.series(interpolate(var["query"], VARIABLES)) for v in s.get("values", [])]
    assert values, var["query"]
    if name == "park":
        assert set(values) == {"jsdemo"}
    if name == "enterprise":
        assert set(values) == {"e00", "e01", "e02", "e03", "e04"}


def _alert_queries():
    doc = yaml.safe_load((REPO / "grafana/provisioning/alerting/rules.yaml").read_text(encoding="utf-8"))
    for rule in doc["groups"][0]["rules"]:
        for q in rule["data"]:
            if q["datasourceUid"] == DATASOURCE_UID:
                yield pytest.param(rule["uid"], q["relativeTimeRange"], q["model"]["query"],
                                   id=f"{rule['uid']}:{q['refId']}")


@pytest.mark.slow
@pytest.mark.parametrize(("uid", "window", "query"), list(_alert_queries()))
def test_alert_rule_queries_run(demo_park, uid, window, query):
    cond = f"time > now() - {window['from']}s" + (f" AND time < now() - {window['to']}s" if window["to"] else "")
    series = demo_park.series(interpolate(query, VARIABLES, time_filter=cond))
    if window["to"] == 0 and "daily-co2" not in uid:  # last week's hour needs a week of history
        assert any(s.get("values") for s in series), (uid, query)


def test_alert_provisioning_is_complete():
    prov = REPO / "grafana/provisioning/alerting"
    rules = yaml.safe_load((prov / "rules.yaml").read_text(encoding="utf-8"))["groups"][0]["rules"]
    titles = " ".join(r["title"] for r in rules)
    for name in ("数据中断", "数据质量异常", "用能异常", "日碳排放超限", "采集缓存积压", "预算消耗 80%", "预算消耗 90%",
                 "预算消耗 100%", "预计超预算", "强度超目标", "日碳排放远超预测", "预测质量下降"):
        assert name in titles
    # the calc-service sends its warnings itself: Grafana's copies stop at a muted first route
    pol = yaml.safe_load((prov / "policies.yaml").read_text(encoding="utf-8"))["policies"][0]
    first = pol["routes"][0]
    assert first["object_matchers"] == [["source", "=", "lingtan-calc"]] and first["mute_time_intervals"] == ["always"]
    assert not first.get("continue") and {r["uid"] for r in rules if r["labels"].get("source") == "lingtan-calc"} == {
        "lingtan-budget-used-80", "lingtan-budget-used-90", "lingtan-budget-used-100", "lingtan-budget-projected",
        "lingtan-intensity-above-target", "lingtan-co2-above-forecast"}
    for r in rules:
        refs = {d["refId"] for d in r["data"]}
        assert r["condition"] in refs and r["labels"]["severity"] in ("critical", "warning", "info")
    cps = yaml.safe_load((prov / "contact-points.yaml").read_text(encoding="utf-8"))["contactPoints"]
    types = {rc["type"] for cp in cps for rc in cp["receivers"]}
    assert types == {"webhook", "email"}
    assert "enterprise" in pol["group_by"]
    muted = {m["name"] for m in yaml.safe_load((prov / "mute-timings.yaml").read_text(encoding="utf-8"))["muteTimes"]}
    used = {n for r in pol["routes"] for n in r.get("mute_time_intervals", [])}
    assert used <= muted


def test_thresholds_file_errors_name_the_field(tmp_path):
    from lingtan_grafana.alerting import load_thresholds

    bad = tmp_path / "t.yaml"
    bad.write_text("silent_minutes: 0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t.yaml: silent_minutes = 0"):
        load_thresholds(bad)
    assert load_thresholds(Path(REPO / "grafana" / "alert-thresholds.yaml")).daily_co2_t["park"] == 200
