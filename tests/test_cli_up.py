"""`lingtan up`, `lingtan status` and `lingtan down` as a user runs them, on free ports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pandas as pd
import pyotp
import pytest
import requests

from lingtan_tools.stack.services import free_port

pytestmark = pytest.mark.slow


def _lingtan(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lingtan.cli", *args], env=env, text=True, capture_output=True,
                          timeout=timeout, check=False)


def test_up_brings_every_point_in_within_60_s_then_status_and_down(tmp_path):
    state = tmp_path / "var"
    env = {
        **os.environ,
        "LINGTAN_STATE_DIR": str(state),
        "LINGTAN_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
        "LINGTAN_MQTT_PORT": str(free_port()),
        "LINGTAN_OPCUA_ENDPOINT": f"opc.tcp://127.0.0.1:{free_port()}",
        "LINGTAN_MODBUS_PORT": str(free_port()),
        "LINGTAN_CALC_PORT": str(free_port()),
        "LINGTAN_PROXY_PORT": str(free_port()),
        "LINGTAN_PROXY_HTTP_PORT": str(free_port()),
    }
    try:
        up = _lingtan(["up", "--wait", "60"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "228/228 points of park jsdemo written in the last 120 s" in up.stdout, up.stdout
        assert "password in" in up.stdout and (state / "lingtan.env").stat().st_mode & 0o077 == 0
        portal = f"https://localhost:{env['LINGTAN_PROXY_PORT']}/"
        assert f"portal     {portal}" in up.stdout, up.stdout
        otp = re.search(r"first login: user admin, one-time password (\S+)", up.stdout).group(1)
        # up again is harmless: servers and supervisor are already running
        again = _lingtan(["up", "--wait", "0"], env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "one-time password" not in again.stdout  # printed once, never again

        status = _lingtan(["status", "--json"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        procs = {p["name"]: p for p in json.loads(status.stdout)["processes"]}
        assert set(procs) >= {"influxd", "mosquitto", "supervisor", "simulator", "collector-opcua",
                              "collector-modbus", "collector-mqtt", "calc-service", "auth-proxy", "http-redirect"}
        assert all(p["up"] for p in procs.values()), procs
        for name in ("collector-opcua", "collector-modbus", "collector-mqtt"):
            assert procs[name]["last_write"], procs[name]
        text = _lingtan(["status"], env)
        assert "collector-modbus" in text.stdout and "s ago" in text.stdout
        # the calc-service writes the demo park's derived series while it runs
        api = f"http://127.0.0.1:{env['LINGTAN_CALC_PORT']}/api/v1"
        deadline, rows = time.monotonic() + 150, []
        while time.monotonic() < deadline and not rows:
            try:
                rows = requests.get(f"{api}/energy", params={"entity": "park", "period": "hour"}, timeout=10).json()["rows"]
            except (requests.RequestException, ValueError, KeyError):
                rows = []
            if not rows:
                time.sleep(5)
        assert rows and rows[-1]["comprehensive_tce"] > 0, rows
        entities = requests.get(f"{api}/entities", timeout=10).json()
        for e in entities:  # the days come once the calc-service has accounted the backfilled history
            deadline, r = time.monotonic() + 300, None
            while time.monotonic() < deadline and not (r is not None and r.status_code == 200 and r.json()["rows"]):
                time.sleep(0 if r is None else 5)
                r = requests.get(f"{api}/carbon", params={"entity": e["id"], "period": "day"}, timeout=30)
            assert r.status_code == 200 and r.json()["rows"], (e["id"], r.text)
        _simulated_weather_arrives(api)
        _backfilled_history_and_forecasts(api)
        _portal_shows_live_data(portal, otp, state / "pki" / "ca.crt")
        plain = requests.get(f"http://localhost:{env['LINGTAN_PROXY_HTTP_PORT']}/overview", allow_redirects=False,
                             timeout=10)
        assert plain.status_code == 301 and plain.headers["Location"] == portal + "overview"
        _restarts_keep_every_figure_physical(env, state)
    finally:
        down = _lingtan(["down"], env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "influxd" in down.stdout and "mosquitto" in down.stdout and "supervisor" in down.stdout
    status = _lingtan(["status", "--json"], env)
    assert status.returncode == 3
    assert not any(p["up"] for p in json.loads(status.stdout)["processes"])


def _simulated_weather_arrives(api: str) -> None:
    """The simulated station posts a week of hourly temperatures, then each hour, to the calc-service."""
    now = pd.Timestamp.now(tz="UTC")
    params = {"start": (now - pd.Timedelta(days=8)).isoformat(), "end": (now + pd.Timedelta(hours=1)).isoformat()}
    deadline, body = time.monotonic() + 90, {}
    while time.monotonic() < deadline and not body.get("latest_observation"):
        body = requests.get(f"{api}/weather", params=params, timeout=10).json()
        if not body.get("latest_observation"):
            time.sleep(3)
    assert body["station"] == "wx-jsdemo" and body["latest_observation"], body
    assert pd.Timestamp(body["latest_observation"]) >= now.floor("h") - pd.Timedelta(hours=1), body
    assert body["days_with_data"] >= 6, body  # the week before the first hour, whole days of it
    temps = [r["air_temperature"] for r in body["rows"]]
    assert all(-15.0 < t < 42.0 for t in temps), temps  # the demo climate of southern Jiangsu


def _backfilled_history_and_forecasts(api: str) -> None:
    """Behind the first live readings the simulator writes 60 days of history; the calc-service
    accounts them and issues the day's forecasts from them (docs/simulator.md, docs/forecast.md)."""
    today = pd.Timestamp.now(tz="Asia/Shanghai").normalize()
    tomorrow_last = (today + pd.Timedelta(hours=47)).isoformat()
    deadline, body = time.monotonic() + 420, {}
    while time.monotonic() < deadline and not any(
            r["time"] == tomorrow_last for r in body.get("models", {}).get("harmonic_arima", [])):
        time.sleep(10)
        body = requests.get(f"{api}/forecast", params={"entity": "park"}, timeout=30).json()
    rows = body["models"]["harmonic_arima"]
    assert len(rows) >= 48 and rows[-1]["time"] == tomorrow_last, body
    assert all(r["lower"] <= r["mean"] <= r["upper"] and r["mean"] > 0 for r in rows), rows
    days = requests.get(f"{api}/energy", params={"entity": "park", "period": "day",
                                                 "start": (today - pd.Timedelta(days=62)).isoformat(),
                                                 "end": today.isoformat()}, timeout=30).json()["rows"]
    assert len(days) >= 58 and all(d["comprehensive_tce"] > 0 for d in days), days
    outturn = requests.get(f"{api}/forecast/outturn", params={"entity": "park"}, timeout=30).json()["outturn"]
    month = next(r for r in outturn if r["quantity"] == "energy_tce" and r["period"] == "month")
    assert month["lower"] <= month["projected"] <= month["upper"] and month["projected"] > month["actual_to_date"]
    _demo_budgets_and_warnings(api, days)


def _demo_budgets_and_warnings(api: str, days: list[dict]) -> None:
    """The demo budgets (lingtan/data/demo_park.budgets.yaml) stand against the accounted days; e02's tight
    one warns (docs/budget.md)."""
    now = pd.Timestamp.now(tz="Asia/Shanghai")
    deadline, body = time.monotonic() + 180, {}  # set after the forecasts, then evaluated
    while time.monotonic() < deadline and len(body.get("budgets", [])) < 2:
        time.sleep(5)
        body = requests.get(f"{api}/budgets", params={"entity": "park"}, timeout=60).json()
    plans = {b["plan"]["kind"]: b for b in body["budgets"]}
    assert set(plans) == {"energy", "carbon"}, body
    energy = plans["energy"]
    year = next(p for p in energy["periods"] if p["period"] == "year")
    in_year = [d for d in days if pd.Timestamp(d["period_start"]).year == now.year]
    counted = sum(d["comprehensive_tce"] - (d.get("renewable_self_tce") or 0) - (d.get("feedstock_tce") or 0)
                  for d in in_year)
    assert counted <= year["actual"] <= counted + 200.0, (counted, year)  # plus today so far (~110 tce a day)
    assert year["lower"] <= year["projected"] <= year["upper"] and year["projected"] >= year["actual"]
    assert abs(sum(energy["plan"]["monthly"]) - energy["plan"]["annual"]) < 1e-6
    deadline, tight = time.monotonic() + 120, []  # the first evaluation follows the last plan
    while time.monotonic() < deadline and not tight:
        warnings = requests.get(f"{api}/warnings", params={"entity": "e02"}, timeout=30).json()["warnings"]
        tight = [w for w in warnings if w["rule"] == "budget_projected" and ":month:" in w["subject"]]
        time.sleep(0 if tight else 5)
    assert tight and tight[0]["value"] > tight[0]["threshold"], warnings


def _hourly_bounds() -> dict[str, float]:
    """The most comprehensive energy any entity of the demo park could use in an hour [tce]: every meter it
    counts, at its rated capacity with the overload the plausibility check allows, for one hour."""
    import datetime as dt

    from lingtan.park import load_park
    from lingtan.park.carriers import Carrier
    from lingtan.park.counters import OVERLOAD, rated_capacity
    from lingtan.settings import DEMO_PARK
    from lingtan_calc.core.accounting.boundary import boundary_rules
    from lingtan_calc.core.accounting.convert import AccountingOptions, coal_equivalent
    from lingtan_calc.core.accounting.factors import FactorLibrary

    park = load_park(DEMO_PARK)
    meters = {m.id: m for e in park.enterprises for u in e.units for m in u.meters}
    lib = FactorLibrary.shipped()
    rules = boundary_rules(park)
    bounds: dict[str, float] = {}
    for r in rules[rules["sign"] > 0].itertuples():
        c = coal_equivalent(Carrier(r.carrier), dt.date.today(), lib, AccountingOptions(grid_region="east_china"),
                            "east_china")
        if c is not None:
            bounds[r.entity] = bounds.get(r.entity, 0.0) + rated_capacity(meters[r.meter]) * OVERLOAD * c.value
    return bounds


def _wait_for_hours(api: str, since: float) -> list[dict]:
    """The park's hourly energy once the calc-service has computed the current hour after ``since``."""
    deadline, rows = time.monotonic() + 180, []
    while time.monotonic() < deadline:
        try:
            health = requests.get(f"{api}/health", timeout=10).json()
            if health.get("last_cycle", {}).get("at") and time.time() - since > 20:
                rows = requests.get(f"{api}/energy", params={"entity": "park", "period": "hour"}, timeout=10).json()[
                    "rows"]
                if rows:
                    return rows
        except (requests.RequestException, ValueError):
            pass
        time.sleep(5)
    raise AssertionError(f"no hourly energy from {api} after the restart")


def _assert_physical(api: str, bounds: dict[str, float]) -> None:
    """Every hour of every entity within what its meters could deliver; the park never negative."""
    for entity, bound in bounds.items():
        rows = requests.get(f"{api}/energy", params={"entity": entity, "period": "hour",
                                                       "start": time.strftime("%Y-%m-%d", time.localtime(
                                                           time.time() - 86400))}, timeout=10).json()["rows"]
        assert rows, entity
        for r in rows:
            assert abs(r["comprehensive_tce"]) <= bound, (entity, r, bound)
            if entity == "park":
                assert r["comprehensive_tce"] >= 0, r


def _restarts_keep_every_figure_physical(env: dict[str, str], state) -> None:
    """`make down` and `make up` (a reboot): the counters go on where they stood. Then once more with the
    simulator's counter state gone, so that every register comes back a few kWh lower (as a gateway replays
    an older value): the drops count zero and are recorded, and no hour of any entity leaves its bounds."""
    api = f"http://127.0.0.1:{env['LINGTAN_CALC_PORT']}/api/v1"
    bounds = _hourly_bounds()
    assert 2 < bounds["park"] < 50, bounds  # the demo park draws 10-20 MW: a few tce an hour
    _assert_physical(api, bounds)
    for forget_counters in (False, True):
        down = _lingtan(["down"], env)
        assert down.returncode == 0, down.stdout + down.stderr
        saved = state / "simulator" / "counters.json"
        assert saved.exists()
        if forget_counters:
            saved.unlink()
        since = time.time()
        up = _lingtan(["up", "--wait", "60"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        _wait_for_hours(api, since)
        _assert_physical(api, bounds)
    # the collectors resumed from the last stored readings and saw the registers step back
    from lingtan.influxdb import InfluxClient
    from lingtan.settings import load_settings

    client = InfluxClient.from_settings(load_settings(state_dir=state, influx_url=env["LINGTAN_INFLUX_URL"]))
    deadline, back = time.monotonic() + 60, []
    while time.monotonic() < deadline and not back:
        back = client.series(f"SELECT count(\"count\") FROM \"data_quality\" WHERE \"reason\" = 'counter_backwards' "
                             f"AND time > {int(since * 1e9)}")
        time.sleep(3)
    assert back and back[0]["values"][0][1] > 20, back  # one per counter that had moved (PV stands still at night)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _portal_shows_live_data(portal: str, otp: str, ca) -> None:
    """The first administrator's first login (new password, TOTP enrolment), then the live overview."""
    s = requests.Session()
    s.trust_env = False
    s.verify = str(ca)
    r = s.post(portal + "login", data={"username": "admin", "password": otp,
                                       "csrf_token": _csrf(s.get(portal + "login").text)})
    assert r.url.endswith("/password"), r.url
    new = "Energy-Park-2026!x"
    r = s.post(portal + "password", data={"current_password": otp, "new_password": new, "repeat_password": new,
                                          "csrf_token": _csrf(r.text)})
    assert r.url.endswith("/mfa/totp"), r.url
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', r.text).group(1).replace(" ", "")
    r = s.post(portal + "mfa/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": _csrf(r.text)})
    assert r.status_code == 200 and "<ol" in r.text  # the recovery codes
    deadline, data = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        data = s.get(portal + "api/v1/overview", params={"entity": "park"}).json()
        if data["power_kw"] and data["energy_tce"] and data["renewable_share"] is not None:
            break
        time.sleep(5)
    assert data["power_kw"].get("grid_import", 0) > 0, data
    assert data["energy_tce"] > 0 and data["co2_t"] > 0, data
    assert 0 <= data["renewable_share"] <= 1, data
    page = s.get(portal + "overview")
    assert page.status_code == 200 and "今日综合能耗" in page.text
