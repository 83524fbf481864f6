"""`lingtan up`, `lingtan status` and `lingtan down` as a user runs them, on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from lingtan.services import free_port

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
    }
    try:
        up = _lingtan(["up", "--wait", "60"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "228/228 points of park jsdemo written in the last 120 s" in up.stdout, up.stdout
        assert "password in" in up.stdout and (state / "lingtan.env").stat().st_mode & 0o077 == 0
        # up again is harmless: servers and supervisor are already running
        again = _lingtan(["up", "--wait", "0"], env)
        assert again.returncode == 0, again.stdout + again.stderr

        status = _lingtan(["status", "--json"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        procs = {p["name"]: p for p in json.loads(status.stdout)["processes"]}
        assert set(procs) >= {"influxd", "mosquitto", "supervisor", "simulator", "collector-opcua",
                              "collector-modbus", "collector-mqtt", "calc-service"}
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
        for e in entities:
            r = requests.get(f"{api}/carbon", params={"entity": e["id"], "period": "day"}, timeout=10)
            assert r.status_code == 200 and r.json()["rows"], (e["id"], r.text)
    finally:
        down = _lingtan(["down"], env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "influxd" in down.stdout and "mosquitto" in down.stdout and "supervisor" in down.stdout
    status = _lingtan(["status", "--json"], env)
    assert status.returncode == 3
    assert not any(p["up"] for p in json.loads(status.stdout)["processes"])
