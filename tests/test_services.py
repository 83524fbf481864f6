"""Real-process tests for lingtan_tools.stack.services: influxd, mosquitto, the supervisor and stop_all."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import pytest
import requests

from lingtan_tools.stack.services import (
    ChildSpec,
    LocalInflux,
    LocalMosquitto,
    ProcessSupervisor,
    ServiceError,
    find_binary,
    free_port,
    read_pid,
    stop_all,
    supervisor_pid,
    supervisor_status,
)


def wait_for(pred: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def mqtt_client(client_id: str, clean_session: bool = True) -> mqtt.Client:
    """A paho-mqtt 2.x client speaking MQTT 3.1.1."""
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                       protocol=mqtt.MQTTv311)


# --- influxd ------------------------------------------------------------------------------------

def test_influx_is_healthy_with_auth(influxd: Any) -> None:
    assert influxd.instance.is_running() and influxd.instance.is_healthy()
    assert requests.get(f"{influxd.url}/ping", timeout=5).status_code == 204
    anon = requests.get(f"{influxd.url}/query", params={"q": "SHOW DATABASES"}, timeout=5)
    assert anon.status_code == 401
    dbs = influxd.query("SHOW DATABASES")["results"][0]["series"][0]["values"]
    assert [influxd.database] in dbs
    assert (influxd.instance.state_dir / "run" / "influxd.pid").is_file()


def test_influx_start_is_idempotent(influxd: Any) -> None:
    pid = influxd.instance.pid
    influxd.instance.start()
    other = LocalInflux(influxd.instance.state_dir, influxd.port)  # e.g. a second `lingtan up`
    other.start()
    assert influxd.instance.pid == other.pid == pid


def test_influx_point_survives_kill9(influxd: Any) -> None:
    influxd.write("kill_test,site=A power_kw=42.5 1700000000000000000")
    old_pid = influxd.instance.pid
    influxd.instance.kill()
    assert not influxd.instance.is_running()
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
    influxd.instance.start()
    assert influxd.instance.pid != old_pid
    series = influxd.query("SELECT power_kw FROM kill_test WHERE site = 'A'")["results"][0]["series"]
    assert series[0]["values"] == [["2023-11-14T22:13:20Z", 42.5]]


def test_influx_large_write_is_accepted(influxd: Any) -> None:
    lines = "\n".join(f"big,meter=m{i % 50} v={i} {1700000000000000000 + i}" for i in range(60_000))
    assert len(lines) > 2_000_000
    influxd.write(lines)
    count = influxd.query("SELECT count(v) FROM big")["results"][0]["series"][0]["values"][0][1]
    assert count == 60_000


# --- mosquitto ----------------------------------------------------------------------------------

def test_mosquitto_is_healthy_and_routes(mosquitto: Any) -> None:
    assert mosquitto.instance.is_running() and mosquitto.instance.is_healthy()
    got = threading.Event()
    sub = mqtt_client(f"t-sub-{uuid.uuid4().hex[:8]}")
    sub.on_message = lambda _c, _u, msg: got.set() if msg.payload == b"hello" else None
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    try:
        sub.subscribe("lingtan/test/route", qos=1)
        time.sleep(0.3)
        pub = mqtt_client(f"t-pub-{uuid.uuid4().hex[:8]}")
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        pub.publish("lingtan/test/route", b"hello", qos=1).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()
        assert got.wait(5)
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_mosquitto_start_is_idempotent(mosquitto: Any) -> None:
    pid = mosquitto.instance.pid
    mosquitto.instance.start()
    other = LocalMosquitto(mosquitto.instance.state_dir, mosquitto.port)
    other.start()
    assert mosquitto.instance.pid == other.pid == pid


def test_mosquitto_persistent_session_survives_restart(mosquitto: Any) -> None:
    topic, client_id, n = "lingtan/test/persist", f"lingtan-persist-{uuid.uuid4().hex[:8]}", 100
    received: list[str] = []
    session_present: list[bool] = []
    connected, subscribed = threading.Event(), threading.Event()

    def on_connect(_c: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        session_present.append(bool(flags.session_present))
        connected.set()

    def subscriber() -> mqtt.Client:
        connected.clear()
        c = mqtt_client(client_id, clean_session=False)
        c.on_connect = on_connect
        c.on_subscribe = lambda *_: subscribed.set()
        c.on_message = lambda _c, _u, msg: received.append(msg.payload.decode())
        c.connect(mosquitto.host, mosquitto.port)
        c.loop_start()
        assert connected.wait(10)
        return c

    sub = subscriber()
    sub.subscribe(topic, qos=1)
    assert subscribed.wait(10)
    sub.disconnect()
    sub.loop_stop()

    pub = mqtt_client(f"lingtan-pub-{uuid.uuid4().hex[:8]}")
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()
    for i in range(n):
        pub.publish(topic, f"m{i}", qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()

    old_pid = mosquitto.instance.pid
    mosquitto.instance.stop()  # SIGTERM: mosquitto writes mosquitto.db on the way out
    assert not mosquitto.instance.is_running()
    mosquitto.instance.start()
    assert mosquitto.instance.pid != old_pid

    sub = subscriber()
    try:
        wait_for(lambda: len(set(received)) >= n, 20, f"{n} queued messages")
        time.sleep(0.3)  # nothing extra should trickle in
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert session_present == [False, True]
    assert sorted(set(received), key=lambda s: int(s[1:])) == [f"m{i}" for i in range(n)]


# --- standalone lifecycle, errors, supervisor ------------------------------------------------------

def test_fresh_servers_start_and_stop_all(tmp_path: Path) -> None:
    influx, mosq = LocalInflux(tmp_path, free_port()), LocalMosquitto(tmp_path, free_port())
    influx.start()
    mosq.start()
    pids = [influx.pid, mosq.pid]
    assert all(pids) and influx.is_healthy() and mosq.is_healthy()
    assert (tmp_path / "influxdb" / "influxdb.conf").is_file() and (tmp_path / "logs" / "mosquitto.log").is_file()
    mosq.stop()
    assert not mosq.is_running() and not (tmp_path / "run" / "mosquitto.pid").exists()
    mosq.stop()  # stopping twice is harmless
    mosq.start()
    assert sorted(stop_all(tmp_path)) == ["influxd", "mosquitto"]
    assert not influx.is_running() and not mosq.is_running()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert stop_all(tmp_path) == []


def test_port_conflict_is_reported(tmp_path: Path, mosquitto: Any) -> None:
    with pytest.raises(ServiceError, match="already in use"):
        LocalInflux(tmp_path, mosquitto.port).start()


def test_startup_failure_names_log(tmp_path: Path) -> None:
    templates = tmp_path / "tmpl"
    templates.mkdir()
    (templates / "influxdb.conf.tmpl").write_text("[http]\n  bind-address = 'not-an-address:${port}'\n")
    server = LocalInflux(tmp_path / "state", free_port(), template_dir=templates, startup_timeout=10)
    with pytest.raises(ServiceError, match=r"influxd\.log"):
        server.start()
    assert not server.is_running()


def test_missing_binary_message() -> None:
    with pytest.raises(ServiceError, match="make setup"):
        find_binary("lingtan-no-such-binary")


def test_supervisor_restarts_children_and_stops_cleanly(tmp_path: Path) -> None:
    py = sys.executable
    children = [
        ChildSpec("sleeper", [py, "-c", "import time; print('up', flush=True); time.sleep(300)"]),
        ChildSpec("crasher", [py, "-c", "import sys; print('boom', flush=True); sys.exit(3)"]),
    ]
    sup = ProcessSupervisor(tmp_path, children, backoff_initial=0.1, backoff_max=0.3, stop_timeout=5)
    sup_pid = sup.spawn_daemon()
    assert sup.spawn_daemon() == sup_pid == supervisor_pid(tmp_path)  # idempotent

    def child(name: str) -> dict[str, Any]:
        doc = supervisor_status(tmp_path) or {"children": []}
        return next((c for c in doc["children"] if c["name"] == name), {})

    wait_for(lambda: child("crasher").get("restarts", 0) >= 3, 20, "crasher restarts")
    assert child("crasher")["last_exit_code"] == 3
    first = wait_for(lambda: child("sleeper").get("pid"), 10, "sleeper pid")
    assert read_pid(tmp_path / "run" / "sleeper.pid") == first
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (p := child("sleeper").get("pid")) and p != first and p, 10, "sleeper restart")
    assert child("sleeper")["restarts"] == 1
    assert "up" in (tmp_path / "logs" / "sleeper.log").read_text()

    assert stop_all(tmp_path)[0] == "supervisor"
    assert not psutil.pid_exists(sup_pid)
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "run" / "sleeper.pid").exists() and supervisor_pid(tmp_path) is None
    assert (supervisor_status(tmp_path) or {})["supervisor"]["running"] is False
