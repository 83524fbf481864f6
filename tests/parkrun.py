"""A whole demo park (simulator + three collectors under the real supervisor) for end-to-end tests.

The park is the demo park with faster timings (Modbus polled every second, stale after
5 s) so that tests run in seconds; every point, binding and tag is the demo park's.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lingtan.influxdb import InfluxClient
from lingtan.park import load_park
from lingtan.park.index import PointRef, iter_points
from lingtan.park.model import Park
from lingtan.settings import DEMO_PARK
from lingtan_influx.provision import init_influx
from lingtan_tools.stack.services import ChildSpec, ProcessSupervisor, free_port, stop_all, supervisor_status

LINGTAN = [sys.executable, "-m", "lingtan.cli"]


def fast_demo_park(path: Path, poll_interval_s: float = 1.0, stale_after_s: float = 5.0) -> Path:
    doc = yaml.safe_load(DEMO_PARK.read_text(encoding="utf-8"))
    for dev in doc["devices"]:
        dev["stale_after_s"] = stale_after_s
        if dev["protocol"] == "modbus":
            dev["poll_interval_s"] = poll_interval_s
            dev["timeout_s"] = 0.5
            dev["backoff_max_s"] = 2.0
        if dev["protocol"] == "opcua":
            dev["publishing_interval_ms"] = 200
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


#: how long after a wait_drained call the collectors' counts are taken [s] (see wait_drained)
SETTLE_S = 2.0


@dataclass
class ParkRun:
    state_dir: Path
    park: Park
    client: InfluxClient
    emit_log: Path
    env: dict[str, str]
    refs: list[PointRef] = field(default_factory=list)
    simulator: Any = None  # a SimulatorThread when the simulator runs in the test process

    # ------------------------------------------------------------------ processes
    def children(self) -> dict[str, dict]:
        doc = supervisor_status(self.state_dir) or {}
        return {c["name"]: c for c in doc.get("children", [])}

    def pid(self, name: str) -> int:
        return int(self.children()[name]["pid"])

    def wait_restarted(self, name: str, old_pid: int, timeout_s: float = 30) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            c = self.children().get(name, {})
            if c.get("pid") and c["pid"] != old_pid and c.get("status") == "running":
                return int(c["pid"])
            time.sleep(0.2)
        raise AssertionError(f"{name} was not restarted within {timeout_s} s: {self.children().get(name)}")

    def collector_status(self, name: str) -> dict:
        try:
            return json.loads((self.state_dir / "run" / f"{name}.status.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_drained(self, timeout_s: float = 120) -> None:
        """Until every collector has written all it had accepted when this was called.

        (Under a continuous stream the buffer is rarely empty at the instant a status file is
        written, so the test is on the counts, not on an empty buffer.)
        """
        deadline = time.monotonic() + timeout_s
        names = ("collector-opcua", "collector-modbus", "collector-mqtt")
        # the counts from a status written at least SETTLE_S after this call: a value a device emitted
        # just before the call reaches its collector within a publishing interval (1 s in the demo park)
        # and is then counted as accepted; a status written before that would leave it out
        called = time.time()
        while time.monotonic() < deadline:
            sts = {n: self.collector_status(n) for n in names}
            if all(s.get("updated", 0) >= called + SETTLE_S for s in sts.values()):
                break
            time.sleep(0.5)
        targets = {n: s.get("accepted", 0) for n, s in sts.items()}
        while time.monotonic() < deadline:
            sts = {n: self.collector_status(n) for n in names}
            if all(s and s.get("written", 0) >= targets[n] and not s.get("replaying") for n, s in sts.items()):
                return
            time.sleep(1)
        raise AssertionError(f"collectors did not drain: {[self.collector_status(n) for n in names]}")

    # ------------------------------------------------------------------ data
    def emitted(self) -> dict[str, list[tuple[int, float]]]:
        """Values the simulator emitted, per point: [(ts_ms, canonical value)]."""
        out: dict[str, list[tuple[int, float]]] = defaultdict(list)
        with open(self.emit_log, encoding="utf-8") as f:
            for raw in f:
                if not raw.endswith("\n"):
                    break  # a line still being written
                rec = json.loads(raw)
                if "point" in rec and "value" in rec and "fault" not in rec:
                    out[rec["point"]].append((int(rec["ts_ms"]), float(rec["value"])))
        return out

    def faults(self) -> list[dict]:
        with open(self.emit_log, encoding="utf-8") as f:
            return [json.loads(r) for r in f if r.endswith("\n") and '"fault"' in r]

    def stored(self, start_ms: int, end_ms: int) -> dict[str, list[tuple[int, float]]]:
        """Raw values in InfluxDB per point with start_ms <= ts <= end_ms."""
        carriers = sorted({r.carrier.value for r in self.refs})
        src = ",".join(f'"{c}"' for c in carriers)
        q = (f'SELECT "total", "rate" FROM {src} WHERE time >= {start_ms}ms AND time <= {end_ms}ms '
             f'GROUP BY "point"')
        out: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for s in self.client.series(q, epoch="ms"):
            pid = s["tags"]["point"]
            for t, total, rate in s["values"]:
                out[pid].append((int(t), total if total is not None else rate))
        return out

    def fresh_points(self, window_s: int = 30) -> set[str]:
        from lingtan_tools.stack.status import point_freshness

        return set(point_freshness(self.client, self.park, window_s=window_s))

    def wait_all_points(self, timeout_s: float = 90) -> None:
        want = {r.id for r in self.refs}
        deadline = time.monotonic() + timeout_s
        got: set[str] = set()
        while time.monotonic() < deadline:
            got = self.fresh_points()
            if got >= want:
                return
            time.sleep(1)
        raise AssertionError(f"{len(want - got)} points never arrived: {sorted(want - got)[:20]}")


def start_park_run(tmp: Path, influxd, mosquitto, *, fault_rate: float = 0.0, seed: int = 7,
                   simulator_in_process: bool = False) -> ParkRun:
    """Start the park. With ``simulator_in_process`` the simulator runs in a thread of the test
    process (``run.simulator``), so tests can inject faults; the collectors are processes."""
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    park_file = fast_demo_park(tmp / "park.yaml")
    db = "e2e_" + uuid.uuid4().hex[:8]
    emit_log = tmp / "emitted.jsonl"
    env = {
        "LINGTAN_STATE_DIR": str(state),
        "LINGTAN_PARK_FILE": str(park_file),
        "LINGTAN_INFLUX_URL": influxd.url,
        "LINGTAN_INFLUX_DB": db,
        "LINGTAN_INFLUX_USER": influxd.user,
        "LINGTAN_INFLUX_PASSWORD": influxd.password,
        "LINGTAN_MQTT_PORT": str(mosquitto.port),
        "LINGTAN_OPCUA_ENDPOINT": f"opc.tcp://127.0.0.1:{free_port()}",
        "LINGTAN_MODBUS_PORT": str(free_port()),
        "LINGTAN_WRITE_FLUSH_INTERVAL_S": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    client = InfluxClient(influxd.url, db, influxd.user, influxd.password)
    init_influx(client, admin_user=influxd.user, admin_password=influxd.password)
    park = load_park(park_file)
    simulator = None
    children = [ChildSpec(f"collector-{p}", [*LINGTAN, "collect", "--protocol", p], env=env)
                for p in ("opcua", "modbus", "mqtt")]
    if simulator_in_process:
        from lingtan.settings import Settings
        from lingtan_tools.simulate.runner import start_in_thread

        settings = Settings(mqtt_port=mosquitto.port, opcua_endpoint=env["LINGTAN_OPCUA_ENDPOINT"],
                            modbus_port=int(env["LINGTAN_MODBUS_PORT"]), state_dir=state)
        simulator = start_in_thread(park, settings, seed=seed, fault_rate=fault_rate, emit_log=emit_log)
    else:
        children.insert(0, ChildSpec("simulator", [*LINGTAN, "simulate", "--seed", str(seed), "--fault-rate",
                                                   str(fault_rate), "--emit-log", str(emit_log)], env=env))
    sup = ProcessSupervisor(state, children, backoff_initial=0.2, backoff_max=1.0)
    sup.spawn_daemon([*LINGTAN, "supervise", "--state-dir", str(state)])
    return ParkRun(state, park, client, emit_log, {**os.environ, **env}, iter_points(park), simulator)


def stop_park_run(run: ParkRun) -> None:
    stop_all(run.state_dir)
    if run.simulator is not None:
        run.simulator.stop()
    logs = run.state_dir / "logs"
    for name in ("collector-opcua", "collector-modbus", "collector-mqtt", "simulator"):
        log = logs / f"{name}.log"
        if log.exists():
            text = log.read_text(errors="replace")
            if "Traceback" in text:
                print(f"----- {name}.log (has a traceback) -----\n{text[-4000:]}")
