"""What each protocol benchmark runs: its configuration, its synthetic park and its load processes.

Used by :mod:`lingtan_tools.bench.protocols`. Every park has one enterprise and unit, electricity meters
whose ``rate`` points (kW) are what the benchmark counts in InfluxDB, and devices whose endpoints
point at the load processes started for the run.
"""

from __future__ import annotations

import functools
import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lingtan_tools.bench.protocols_load import OPCUA_NAMESPACE, mqtt_topic, opcua_node
from lingtan_tools.bench.stack import BenchStack
from lingtan_tools.stack.services import free_port

#: the issue's targets, in each protocol's unit per second
TARGETS = {"mqtt": 20_000.0, "opcua": 10_000.0, "modbus": 1_000.0}
UNITS = {"mqtt": "messages/s", "opcua": "value changes/s", "modbus": "requests/s"}
#: offered load above the target, so that jitter at the window edges cannot fail a collector that keeps up
HEADROOM = 1.04
MEASUREMENT, FIELD = "electricity", "rate"
#: Modbus: 5 points in each 10-register request; requests 16 registers apart so that none merge
MODBUS_LAYOUT = (("float32", 2), ("uint32", 2), ("float32", 2), ("int32", 2), ("float32", 2))
MODBUS_STRIDE = 16
#: the park model's default publishing interval
OPCUA_PUBLISHING_MS = 1000


@dataclass(frozen=True)
class BenchConfig:
    """Size and timing of one protocol run."""

    rate: float  # offered load per second, in the protocol's unit
    size: int  # MQTT topics / OPC UA variables per server / Modbus unit ids
    generators: int = 1  # MQTT publisher processes / OPC UA server processes (Modbus: always 1 server)
    window_s: float = 30.0
    warmup_s: float = 5.0
    grace_s: float = 5.0
    poll_s: float = 0.25
    lookback_s: float = 8.0
    samples_per_s: float = 40.0  # sampled values per second for the latency probe
    startup_timeout_s: float = 90.0


def default_config(protocol: str, quick: bool, fraction: float = 1.0) -> BenchConfig:
    """The configuration that offers ``fraction`` of the target (times :data:`HEADROOM`)."""
    rate = TARGETS[protocol] * HEADROOM * fraction
    timing = {"window_s": 10.0, "warmup_s": 3.0} if quick else {"window_s": 30.0, "warmup_s": 5.0}
    if protocol == "mqtt":
        # at most 10 messages/s per topic; a publisher process per 10,000 messages/s (one paho client costs
        # ~47 us per QoS 1 message here; a third process for 20,000/s only adds overhead on 2 cores)
        return BenchConfig(rate, math.ceil(rate / 10), math.ceil(rate / HEADROOM / 10_000 - 1e-9), **timing)
    if protocol == "opcua":  # two servers (one asyncua process tops out below 10,000 changes/s), 2 Hz per variable
        return BenchConfig(rate, math.ceil(rate / 2 / 2), 2, **timing)
    return BenchConfig(rate, 20, **timing)  # Modbus: 20 unit ids, poll interval 1 s


@dataclass
class Plan:
    """How to run one protocol: its park, its load and what to sample."""

    park: dict[str, Any]
    env: dict[str, str]  # endpoint settings for the collector
    loads: list[list[str]]  # argv of every load process (each prints a line with 'ready'/'listening')
    sample: list[str]  # point ids whose latency is probed
    per_value: int  # InfluxDB "rate" values per message / change / request
    reports: list[Path] = field(default_factory=list)  # JSON reports of the load processes (if any)
    planned_per_s: float = 0.0  # the load offered when no report says (Modbus: the requests polled)
    describe: str = ""
    cleanup: Callable[[], None] | None = None  # run after every process of the run has stopped


# --------------------------------------------------------------------------- parks and loads


def _park(park_id: str, devices: list[dict[str, Any]], meters: list[dict[str, Any]]) -> dict[str, Any]:
    """A park document with ``devices`` and one enterprise/unit holding ``meters``."""
    return {"park": {"id": park_id, "name": f"benchmark park {park_id}", "province": "江苏",
                     "grid_region": "east_china", "location": {"latitude": 31.49, "longitude": 120.31}},
            "devices": devices,
            "enterprises": [{"id": "be1", "name": "bench enterprise", "credit_code": "91320214MA20EN001H",
                             "industry_code": "C3982", "units": [{"id": "bu1", "name": "bench unit",
                                                                 "meters": meters}]}]}


def _rate_point(pid: str, **binding: Any) -> dict[str, Any]:
    """An electricity rate point (kW, consumption) with one protocol binding."""
    return {"id": pid, "kind": "rate", "unit": "kW", "role": "consumption", "valid_min": 0, **binding}


def _spread(items: list[str], n: int) -> list[str]:
    """``n`` items spread evenly over ``items`` (at least one, at most all)."""
    n = max(1, min(n, len(items)))
    return [items[i * len(items) // n] for i in range(n)]


def _load_argv(*args: object) -> list[str]:
    """The command line of a :mod:`lingtan_tools.bench.protocols_load` process."""
    return [sys.executable, "-m", "lingtan_tools.bench.protocols_load", *(str(a) for a in args)]


def plan_mqtt(stack: BenchStack, cfg: BenchConfig, park_id: str, tmp: Path) -> Plan:
    """One MQTT device, ``cfg.size`` meters on topics ``<park id>/m<i>`` (counter + rate each).

    Topics of their own per run: the persistent session of an earlier run's collector keeps its
    subscriptions on the broker, which would otherwise queue every message for it too.
    """
    assert stack.mosquitto is not None, "the MQTT benchmark needs bench_stack(with_mqtt=True)"
    prefix = park_id
    meters = [{"id": f"m{i}", "name": f"meter {i}", "carrier": "electricity", "device": "gw", "points": [
        {"id": f"m{i}.total", "kind": "counter", "unit": "kWh", "role": "consumption", "valid_min": 0,
         "mqtt": {"topic": mqtt_topic(prefix, i), "json_path": "energy.total"}},
        _rate_point(f"m{i}.rate", mqtt={"topic": mqtt_topic(prefix, i), "json_path": "power.value"})]}
        for i in range(cfg.size)]
    plan = Plan(_park(park_id, [{"id": "gw", "protocol": "mqtt"}], meters),
                {"LINGTAN_MQTT_HOST": "127.0.0.1", "LINGTAN_MQTT_PORT": str(stack.mosquitto.port)}, [],
                _spread([f"m{i}.rate" for i in range(cfg.size)], math.ceil(cfg.samples_per_s * cfg.size / cfg.rate)),
                per_value=1)
    bounds = [cfg.size * k // cfg.generators for k in range(cfg.generators + 1)]
    for k in range(cfg.generators):
        plan.reports.append(tmp / f"load-{k}.json")
        plan.loads.append(_load_argv("mqtt", "--port", stack.mosquitto.port, "--prefix", prefix, "--topics",
                                     f"{bounds[k]}:{bounds[k + 1] - bounds[k]}", "--rate",
                                     cfg.rate / cfg.generators, "--report", plan.reports[-1]))
    plan.cleanup = functools.partial(forget_mqtt_session, stack.mosquitto.port, f"lingtan-{park_id}-gw")
    plan.describe = (f"{cfg.generators} publisher process(es) (MQTT 3.1.1 on the wire, lingtan_tools.bench.mqtt_wire), QoS 1, {cfg.size:,} topics at "
                     f"{cfg.rate / cfg.size:.3g} msg/s each, 2 values per message")
    return plan


def forget_mqtt_session(port: int, client_id: str) -> None:
    """Remove the broker's persistent session of ``client_id`` (and the messages queued for it).

    ``client_id`` is what the MQTT collector uses, ``lingtan-<park id>-<device id>``; connecting
    with it and a clean session makes mosquitto discard the old one.
    """
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        connected.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()


def plan_opcua(stack: BenchStack, cfg: BenchConfig, park_id: str, tmp: Path) -> Plan:
    """``cfg.generators`` OPC UA devices (one asyncua server process each) with ``cfg.size`` variables."""
    devices, meters, sample = [], [], []
    plan = Plan({}, {}, [], [], per_value=1)
    for j in range(cfg.generators):
        port = free_port()
        devices.append({"id": f"plc{j}", "protocol": "opcua", "endpoint": f"opc.tcp://127.0.0.1:{port}/",
                        "namespace_uri": OPCUA_NAMESPACE, "publishing_interval_ms": OPCUA_PUBLISHING_MS})
        ids = [f"d{j}.v{i}" for i in range(cfg.size)]
        meters += [{"id": f"d{j}.m{i}", "name": f"meter {j}/{i}", "carrier": "electricity", "device": f"plc{j}",
                    "points": [_rate_point(pid, opcua={"node_id": f"ns=2;s={opcua_node(i)}"})]}
                   for i, pid in enumerate(ids)]
        sample += _spread(ids, math.ceil(cfg.samples_per_s * cfg.size / cfg.rate))
        plan.reports.append(tmp / f"load-{j}.json")
        plan.loads.append(_load_argv("opcua", "--port", port, "--nodes", cfg.size, "--rate", cfg.rate / cfg.generators,
                                     "--lean", "--report", plan.reports[-1]))
        plan.env.setdefault("LINGTAN_OPCUA_ENDPOINT", devices[-1]["endpoint"])
    plan.park, plan.sample = _park(park_id, devices, meters), sample
    plan.describe = (f"{cfg.generators} asyncua server process(es) (one device each, per-item deep copy skipped), "
                     f"{cfg.size:,} variables each changing at {cfg.rate / cfg.generators / cfg.size:.3g} Hz, "
                     f"publishing interval {OPCUA_PUBLISHING_MS} ms")
    return plan


def plan_modbus(stack: BenchStack, cfg: BenchConfig, park_id: str, tmp: Path) -> Plan:
    """One Modbus device polled every 1 s: ``cfg.size`` unit ids × enough 10-register requests for ``cfg.rate``."""
    per_unit = max(1, math.ceil(cfg.rate / cfg.size))
    meters, firsts = [], []
    for u in range(1, cfg.size + 1):
        points = []
        for r in range(per_unit):
            address = r * MODBUS_STRIDE
            for i, (type_, words) in enumerate(MODBUS_LAYOUT):
                points.append(_rate_point(f"u{u}.r{r}.{i}", modbus={"unit_id": u, "function": 3,
                                                                    "address": address, "type": type_}))
                address += words
            firsts.append(f"u{u}.r{r}.0")
        meters.append({"id": f"u{u}", "name": f"unit {u}", "carrier": "electricity", "device": "plc", "points": points})
    port = free_port()
    plan = Plan(_park(park_id, [{"id": "plc", "protocol": "modbus", "poll_interval_s": 1}], meters),
                {"LINGTAN_MODBUS_HOST": "127.0.0.1", "LINGTAN_MODBUS_PORT": str(port)},
                [[sys.executable, "-m", "lingtan_collectors.modbus.simulator", "--port", str(port),
                  "--units", str(cfg.size), "--registers", str(per_unit * MODBUS_STRIDE)]],
                _spread(firsts, math.ceil(cfg.samples_per_s)), per_value=len(MODBUS_LAYOUT),
                planned_per_s=cfg.size * per_unit)
    plan.describe = (f"pymodbus test server process, {cfg.size} unit ids × {per_unit} requests of 10 registers "
                     f"(5 points) every 1 s = {cfg.size * per_unit:,} requests/s offered")
    return plan


PLANS: dict[str, Callable[[BenchStack, BenchConfig, str, Path], Plan]] = {
    "mqtt": plan_mqtt, "opcua": plan_opcua, "modbus": plan_modbus}
