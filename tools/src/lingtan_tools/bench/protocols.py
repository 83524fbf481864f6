"""End-to-end protocol benchmarks: device → real collector process → InfluxDB, on loopback.

For each protocol every component is a separate process: a private influxd (and mosquitto)
from :func:`lingtan_tools.bench.stack.bench_stack`, load generators (:mod:`lingtan_tools.bench.protocols_load`
for MQTT and OPC UA, the pymodbus test server for Modbus) and the real collector,
``python -m lingtan.cli collect --protocol X``, configured only through ``LINGTAN_*`` variables
and a synthetic park YAML. The collector writes into its own database, provisioned by
``init_influx`` like a real one (``raw`` retention policy, continuous queries).

What is measured, over a window of whole seconds after a warm-up:

* **rate**: values whose *data timestamp* lies in the window and that are in InfluxDB
  ``grace_s`` after the window ends (a count query), per second, in the protocol's unit
  (MQTT messages, OPC UA value changes, Modbus 10-register requests), next to what the load
  generator offered in the same window;
* **latency**, device to InfluxDB: a probe thread queries a sample of series every
  ``poll_s`` and records, for each value with a timestamp in the window, the start of the
  first query that returned it minus its timestamp (an upper bound, ``poll_s`` resolution).
  Sampled values that are in InfluxDB at the end but were never seen by the probe
  (later than ``lookback_s``) count as infinitely late;
* the collector's **memory** (peak RSS, sampled every 0.25 s over the whole run), the
  **CPU** of every component over the window (collector, load generators, broker, influxd,
  this harness, and everything else on the machine), the collector's ``data_quality``
  counts and warnings (from its status file and log).

A protocol passes when the rate reaches its target and p95 latency is below 2 s. When a
full run misses, lower rates are tried (``RAMP``) to report the highest one sustained.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from lingtan.influxdb import InfluxClient
from lingtan.park.loader import parse_park
from lingtan_collectors.common.runtime import status_path
from lingtan_influx.provision import init_influx
from lingtan_tools.bench.protocols_plans import (
    FIELD,
    MEASUREMENT,
    PLANS,
    TARGETS,
    UNITS,
    BenchConfig,
    Plan,
    default_config,
)
from lingtan_tools.bench.stack import BenchStack, bench_stack

LATENCY_TARGET_S = 2.0
#: fractions of the target tried, in order, after a full run missed it
RAMP = (0.9, 0.8, 0.7, 0.6, 0.5, 0.25)
#: a ramp step whose median latency grew by more than this over the window was not sustained
MAX_DRIFT_S = 0.5
_MIB = 2**20


@dataclass
class Latency:
    """Device-to-InfluxDB latency of the sampled values [s]."""

    samples: int = 0
    late: int = 0  # in InfluxDB at the end, never seen by the probe: counted as infinitely late
    p50_s: float = math.nan
    p95_s: float = math.nan
    max_s: float = math.nan
    p50_by_second: list[float] = field(default_factory=list)  # median of each second of the window

    @staticmethod
    def pct(ordered: list[float], p: float) -> float:
        """Nearest-rank percentile of sorted values (NaN when empty)."""
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] if ordered else math.nan

    @classmethod
    def of(cls, values: list[tuple[int, float]], late: int = 0) -> Latency:
        """From ``(epoch s, latency)`` pairs, plus ``late`` values counted as infinitely late."""
        ordered = sorted(v for _, v in values) + [math.inf] * late
        if not ordered:
            return cls()
        by_second: dict[int, list[float]] = {}
        for sec, v in values:
            by_second.setdefault(sec, []).append(v)
        trend = [round(cls.pct(sorted(by_second[sec]), 0.5), 3) for sec in sorted(by_second)]
        return cls(len(ordered), late, cls.pct(ordered, 0.5), cls.pct(ordered, 0.95), ordered[-1], trend)

    def quarters(self) -> tuple[float, float]:
        """Median of the per-second medians in the first and in the last quarter of the window."""
        t = self.p50_by_second
        if len(t) < 4:
            return math.nan, math.nan
        k = len(t) // 4
        return sorted(t[:k])[k // 2], sorted(t[-k:])[k // 2]

    @property
    def drift_s(self) -> float:
        """How much later values landed at the end of the window than at its start (a growing backlog)."""
        first, last = self.quarters()
        return last - first if math.isfinite(last - first) else 0.0


@dataclass
class ProtocolResult:
    """Everything one run measured."""

    protocol: str
    config: BenchConfig
    offered: float = 0.0  # per second, generated with a timestamp in the window
    landed: float = 0.0  # per second, in InfluxDB grace_s after the window
    latency: Latency = field(default_factory=Latency)
    rss_peak_mib: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core over the window
    data_quality: dict[str, int] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)  # the collector's final status file
    generator_behind_s: float = 0.0
    publish_ack: Latency = field(default_factory=Latency)  # MQTT: publish() to PUBACK at the publishers
    warnings: list[str] = field(default_factory=list)  # WARNING/ERROR lines of the collector log
    load: str = ""  # how the load was generated
    error: str = ""

    @property
    def sustained(self) -> bool:
        """Kept up with the offered load within the latency target, without a growing backlog."""
        return (not self.error and self.landed >= 0.99 * self.config.rate
                and self.latency.p95_s < LATENCY_TARGET_S and self.latency.drift_s < MAX_DRIFT_S)

    @property
    def passed(self) -> bool:
        """Met the issue's target: the target rate landed with p95 latency below 2 s."""
        return not self.error and self.landed >= TARGETS[self.protocol] and self.latency.p95_s < LATENCY_TARGET_S


# --------------------------------------------------------------------------- measuring


class _Probe(threading.Thread):
    """Polls the sampled series; records when each value was first queryable, and the collector's RSS."""

    def __init__(self, client: InfluxClient, points: list[str], cfg: BenchConfig, collector: psutil.Process):
        super().__init__(name="bench-latency-probe", daemon=True)
        self.client, self.cfg, self.collector = client, cfg, collector
        alternatives = "|".join(re.escape(p) for p in points)
        self.query = (f'SELECT "{FIELD}" FROM "{MEASUREMENT}" WHERE "point" =~ /^(?:{alternatives})$/ '
                      'AND time >= %d GROUP BY "point"')
        self.first_seen: dict[tuple[str, int], int] = {}  # (point, ts ns) -> query start ns
        self.rss_peak = 0
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        """Poll every ``poll_s`` until :attr:`stop` is set."""
        lookback_ns = int(self.cfg.lookback_s * 1e9)
        while not self.stop.wait(self.cfg.poll_s):
            with contextlib.suppress(psutil.Error):
                self.rss_peak = max(self.rss_peak, self.collector.memory_info().rss)
            started = time.time_ns()
            try:
                for row in self.client.rows(self.query % (started - lookback_ns), epoch="ns"):
                    self.first_seen.setdefault((row["point"], row["time"]), started)
            except Exception:  # a slow or failing query loses one poll, not the run
                self.errors += 1

    def latency(self, t0_ns: int, t1_ns: int, stored: int) -> Latency:
        """Latency of the sampled values stamped in [t0, t1), ``stored`` of which are in InfluxDB now."""
        seen = [(ts // 10**9, (q - ts) / 1e9) for (_, ts), q in self.first_seen.items() if t0_ns <= ts < t1_ns]
        return Latency.of(seen, max(0, stored - len(seen)))


def _cpu_seconds(procs: dict[str, list[psutil.Process]]) -> dict[str, float]:
    """CPU seconds used so far by each group of processes, and by the whole machine.

    ``machine`` is everything but idle, iowait and steal; ``kernel irq`` (hard and soft
    interrupts, mostly loopback networking) is charged to no process; ``steal`` is time the
    hypervisor gave to other virtual machines.
    """
    out = {}
    for name, plist in procs.items():
        total = 0.0
        for p in plist:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        out[name] = total
    t = psutil.cpu_times()
    irq = getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    out["kernel irq"] = irq
    out["machine"] = t.user + t.nice + t.system + irq
    out["steal"] = getattr(t, "steal", 0.0)
    return out


def _cpu_percent(a: dict[str, float], b: dict[str, float], seconds: float) -> dict[str, float]:
    """Per cent of one core per key between two :func:`_cpu_seconds`, plus ``other`` processes."""
    pct = {k: (b[k] - a[k]) / seconds * 100 for k in a}
    mine = sum(v for k, v in pct.items() if k not in ("machine", "steal"))
    pct["other processes"] = max(0.0, pct["machine"] - mine)
    return pct


def _wait_ready(proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    """Wait for a line saying 'ready'/'listening' on ``proc``'s stdout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(max(0.0, deadline - time.monotonic())):
                line = proc.stdout.readline()
                if b"ready" in line or b"listening" in line:
                    return
                if not line:
                    break
    raise RuntimeError(f"{what} did not start (exit code {proc.poll()})")


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int | None:
    """SIGTERM ``proc`` (one we started), SIGKILL it after ``timeout_s``; its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def _count(client: InfluxClient, t0_ns: int, t1_ns: int, points: list[str] | None = None) -> int:
    """Raw values stamped in [t0, t1) in InfluxDB now (of ``points`` only, if given)."""
    where = f"time >= {t0_ns} AND time < {t1_ns}"
    if points is not None:
        where += ' AND "point" =~ /^(?:' + "|".join(re.escape(p) for p in points) + ")$/"
    rows = client.rows(f'SELECT count("{FIELD}") FROM "{MEASUREMENT}" WHERE {where}', epoch="ns")
    return int(rows[0]["count"]) if rows else 0


def _log_problems(path: Path, limit: int = 5) -> list[str]:
    """The first distinct WARNING/ERROR/Traceback lines of a collector log (timestamps stripped).

    Skips asyncua's notice that the server granted a shorter session timeout than the client's
    default request (1 h asked, 10 min granted by an asyncua server): expected, and harmless.
    """
    out: list[str] = []
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if "Requested session timeout to be" in line:
                continue
            if " WARNING " in line or " ERROR " in line or line.startswith("Traceback"):
                msg = re.sub(r"^\d{4}-\d\d-\d\d \S+ ", "", line)[:200]
                if msg not in out:
                    out.append(msg)
                if len(out) >= limit:
                    break
    return out


@contextlib.contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to put started processes in; each is stopped (last first) on the way out."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for p in reversed(procs):
            _stop(p, 10.0)


def bench_protocol(stack: BenchStack, protocol: str, cfg: BenchConfig, run_id: str = "",
                   log_dir: Path | None = None) -> ProtocolResult:
    """Run ``protocol``'s collector process against its load for ``cfg`` and measure it.

    Never raises for a failed run: the result then carries ``error`` (and the collector log's
    last lines in ``warnings``). ``log_dir``: where to keep the park file and the logs of the
    collector and load processes (otherwise they go with the temporary directory).
    """
    result = ProtocolResult(protocol, cfg)
    run_id = run_id or f"{protocol}-{int(cfg.rate)}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    db = "bench_" + re.sub(r"\W", "_", run_id)
    with tempfile.TemporaryDirectory(prefix=f"lingtan-bench-{protocol}-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            _measure(stack, protocol, cfg, db, tmp, result)
        except Exception as exc:  # one broken run is a failed row, not a crashed benchmark
            result.error = result.error or f"{exc.__class__.__name__}: {exc}"
        collector_log = tmp / "collector.log"
        result.warnings = _log_problems(collector_log)
        if result.error and collector_log.exists():
            result.warnings += [ln[:200] for ln in collector_log.read_text(errors="replace").splitlines()[-5:]]
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            for f in [*tmp.glob("*.yaml"), *tmp.glob("*.log"), *tmp.glob("load-*.json")]:
                shutil.copy(f, log_dir / f.name)
    return result


def _measure(stack: BenchStack, protocol: str, cfg: BenchConfig, db: str, tmp: Path,
             result: ProtocolResult) -> None:
    """The run behind :func:`bench_protocol`, filling ``result`` as it goes."""
    client = stack.client(db)
    init_influx(client, admin_user=stack.user, admin_password=stack.password)
    # a park id of its own: the MQTT client id (and so the broker's persistent session) derives from it,
    # and a session left by an earlier run that fell behind would make this one drain that backlog first
    plan = PLANS[protocol](stack, cfg, db.replace("_", "-"), tmp)
    result.load = plan.describe
    park_file = _write_park(plan, tmp)
    with _processes() as procs:
        loads = _start_loads(plan, cfg, tmp, procs)
        collector = _start_collector(stack, plan, protocol, db, tmp, park_file)
        procs.append(collector)
        groups = _cpu_groups(stack, protocol, collector, loads)
        probe = _Probe(stack.client(db), plan.sample, cfg, groups["collector"][0])
        probe.start()
        try:
            t0_ns, t1_ns = _window(cfg, collector, probe, groups, result)
            stored = _count(client, t0_ns, t1_ns)
            sampled = _count(client, t0_ns, t1_ns, plan.sample)
            if collector.poll() is not None:
                raise RuntimeError(f"the collector exited with code {collector.returncode} during the run")
        finally:
            code = _end_run(probe, collector, procs, plan, protocol, tmp, result)
    result.landed = stored / plan.per_value / cfg.window_s
    result.latency = probe.latency(t0_ns, t1_ns, sampled)
    _add_generator_reports(plan, cfg, t0_ns, t1_ns, result)
    if code not in (0, None):
        result.error = f"the collector exited with code {code} on SIGTERM"


def _write_park(plan: Plan, tmp: Path) -> Path:
    """Write the plan's synthetic park to ``tmp/park.yaml`` and check it loads; its path."""
    park_file = tmp / "park.yaml"
    text = yaml.dump(plan.park, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True,
                     sort_keys=False)
    park_file.write_text(text, encoding="utf-8")
    parse_park(text, park_file)  # fail here, not in the collector, on a bad synthetic park
    return park_file


def _start_loads(plan: Plan, cfg: BenchConfig, tmp: Path,
                 procs: list[subprocess.Popen[bytes]]) -> list[psutil.Process]:
    """Start the load generators one by one (into ``procs``), each once it says it is ready."""
    for k, argv in enumerate(plan.loads):
        with open(tmp / f"load-{k}.log", "wb") as logf:
            procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=logf))
        _wait_ready(procs[-1], cfg.startup_timeout_s, f"load generator {' '.join(argv[2:4])}")
    return [psutil.Process(p.pid) for p in procs]


def _start_collector(stack: BenchStack, plan: Plan, protocol: str, db: str, tmp: Path,
                     park_file: Path) -> subprocess.Popen[bytes]:
    """The real collector process, configured only through ``LINGTAN_*`` variables, logging to ``collector.log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGTAN_")}
    env.update(plan.env, LINGTAN_STATE_DIR=str(tmp / "collector"), LINGTAN_PARK_FILE=str(park_file),
               LINGTAN_INFLUX_URL=stack.influx.url, LINGTAN_INFLUX_DB=db, LINGTAN_INFLUX_USER=stack.user,
               LINGTAN_INFLUX_PASSWORD=stack.password)
    with open(tmp / "collector.log", "wb") as logf:
        return subprocess.Popen([sys.executable, "-m", "lingtan.cli", "collect", "--protocol", protocol],
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env)


def _cpu_groups(stack: BenchStack, protocol: str, collector: subprocess.Popen[bytes],
                loads: list[psutil.Process]) -> dict[str, list[psutil.Process]]:
    """The processes whose CPU is reported, by component."""
    groups = {"collector": [psutil.Process(collector.pid)], "load generators": loads}
    for name, server in (("mosquitto", stack.mosquitto if protocol == "mqtt" else None), ("influxd", stack.influx)):
        if server is not None and server.pid:
            groups[name] = [psutil.Process(server.pid)]
    groups["bench harness"] = [psutil.Process()]
    return groups


def _end_run(probe: _Probe, collector: subprocess.Popen[bytes], procs: list[subprocess.Popen[bytes]], plan: Plan,
             protocol: str, tmp: Path, result: ProtocolResult) -> int | None:
    """Stop the probe, the collector (first) and the loads; keep peak RSS and the collector's status; its exit code."""
    probe.stop.set()
    probe.join(10)
    result.rss_peak_mib = probe.rss_peak / _MIB
    code = _stop(collector, 30.0)  # first, so that it never sees its devices go away
    for p in procs[:-1]:
        _stop(p)
    if plan.cleanup is not None:
        plan.cleanup()
    with contextlib.suppress(OSError, ValueError):
        result.status = json.loads(status_path(tmp / "collector", f"collector-{protocol}").read_text())
        result.data_quality = {k: v for k, v in result.status.get("data_quality", {}).items() if v}
    return code


def _add_generator_reports(plan: Plan, cfg: BenchConfig, t0_ns: int, t1_ns: int, result: ProtocolResult) -> None:
    """What the load generators offered in the window [ns), their publish-ack delays and how far they fell behind."""
    offered, acks = 0, []
    for report in plan.reports:
        data = json.loads(report.read_text())
        offered += sum(n for s, n in data["per_second"].items() if t0_ns <= int(s) * 10**9 < t1_ns)
        acks += [(s, d) for s, d in data.get("ack_delays", []) if t0_ns <= s * 10**9 < t1_ns]
        result.generator_behind_s = max(result.generator_behind_s, data["max_behind_s"])
    result.publish_ack = Latency.of(acks)
    result.offered = offered / cfg.window_s if plan.reports else plan.planned_per_s


def _window(cfg: BenchConfig, collector: subprocess.Popen[bytes], probe: _Probe,
            groups: dict[str, list[psutil.Process]], result: ProtocolResult) -> tuple[int, int]:
    """Wait for data, warm up, measure CPU over the window and wait ``grace_s``; the window [ns)."""
    deadline = time.monotonic() + cfg.startup_timeout_s
    while not probe.first_seen:
        if collector.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no data in InfluxDB {cfg.startup_timeout_s:g} s after starting the collector "
                               f"(exit code {collector.poll()})")
        time.sleep(0.1)
    time.sleep(cfg.warmup_s)
    t0 = math.ceil(time.time()) + 1
    t1 = t0 + math.ceil(cfg.window_s)
    time.sleep(max(0.0, t0 - time.time()))
    cpu0, m0 = _cpu_seconds(groups), time.monotonic()
    time.sleep(max(0.0, t1 - time.time()))
    result.cpu = _cpu_percent(cpu0, _cpu_seconds(groups), time.monotonic() - m0)
    time.sleep(cfg.grace_s)
    return t0 * 10**9, t1 * 10**9


# --------------------------------------------------------------------------- report


def _fmt_s(x: float) -> str:
    """A latency for the report: seconds, '> 2 s' for never-seen values, 'n/a' without data."""
    return "n/a" if math.isnan(x) else (f"> {LATENCY_TARGET_S:g} s" if math.isinf(x) else f"{x:.2f} s")


def _trend(lat: Latency) -> str:
    """', median a s in the first and b s in the last quarter' when the latency drifted (a growing backlog)."""
    first, last = lat.quarters()
    if not abs(last - first) > 0.3:
        return ""
    return f", median {first:.2f} s in the first and {last:.2f} s in the last quarter"


def result_row(res: ProtocolResult, ramp: list[ProtocolResult] | None = None) -> dict[str, Any]:
    """One report row (benchmark, result, target, pass, detail) plus the numbers as JSON (``value``,
    ``unit``, ``metrics``); the steps of a ramp that followed are kept in ``metrics`` too."""
    unit, cfg, lat = UNITS[res.protocol], res.config, res.latency
    titles = {"mqtt": "MQTT → InfluxDB end to end (QoS 1 publishers → mosquitto → collector process)",
              "opcua": "OPC UA → InfluxDB end to end (asyncua servers → collector process, subscriptions)",
              "modbus": "Modbus TCP → InfluxDB end to end (pymodbus server → collector process, polling)"}
    result = (f"{res.landed:,.0f} {unit}; latency p50 {_fmt_s(lat.p50_s)}, p95 {_fmt_s(lat.p95_s)}; "
              f"collector RSS peak {res.rss_peak_mib:.0f} MiB")
    cpu = ", ".join(f"{k} {v:.0f}" for k, v in res.cpu.items() if k not in ("machine", "steal"))
    if res.cpu:
        cpu += f" (machine total {res.cpu['machine']:.0f} of {100 * (os.cpu_count() or 1)}"
        cpu += f", hypervisor steal {res.cpu['steal']:.0f})" if res.cpu["steal"] >= 1 else ")"
    if res.cpu and res.landed > 0:
        per = unit.removesuffix("/s").rstrip("s").replace("value change", "change")
        cpu += f"; the collector spent {res.cpu['collector'] * 1e4 / res.landed:.0f} us of CPU per {per}"
    details = [f"offered {res.offered:,.0f} {unit} by {res.load}",
               f"{cfg.window_s:.0f} s window after {cfg.warmup_s:.0f} s warm-up, counted {cfg.grace_s:.0f} s later",
               f"latency from {lat.samples:,} sampled values ({lat.late} never seen within {cfg.lookback_s:g} s), "
               f"upper bound at {cfg.poll_s:g} s resolution" + _trend(lat),
               f"publisher publish→PUBACK p50 {_fmt_s(res.publish_ack.p50_s)}, p95 {_fmt_s(res.publish_ack.p95_s)}"
               if res.publish_ack.samples else "",
               f"CPU % of one core over the window: {cpu}" if res.cpu else "",
               "data_quality: " + (", ".join(f"{k} {v:,}" for k, v in res.data_quality.items()) or "none"),
               f"load generator fell up to {res.generator_behind_s:.2f} s behind schedule"
               if res.generator_behind_s > 0.5 else ""]
    if res.status.get("replaying"):
        details.append("the sink had fallen back to replaying its disk buffer")
    if res.warnings:
        details.append(f"collector log: {len(res.warnings)} warning(s), first: {res.warnings[0]}")
    if res.error:
        details.insert(0, f"ERROR: {res.error}")
    return {"benchmark": titles[res.protocol], "result": result,
            "target": f"≥ {TARGETS[res.protocol]:,.0f} {unit}, p95 < {LATENCY_TARGET_S:g} s",
            "pass": res.passed, "detail": "; ".join(d for d in details if d).replace("|", "/"),
            "value": float(res.landed), "unit": unit,
            "metrics": _finite({**asdict(res), "ramp": [asdict(r) for r in ramp or []]})}


def ramp_row(protocol: str, ramp: list[ProtocolResult]) -> dict[str, Any]:
    """The reference row of a ramp down: the highest offered rate that was sustained, and every step."""
    unit = UNITS[protocol]
    best = next((r for r in ramp if r.sustained), None)
    steps = " / ".join(f"{r.offered:,.0f} offered → {r.landed:,.0f} landed, p95 {_fmt_s(r.latency.p95_s)}"
                       + _trend(r.latency) + (f" ({r.error})" if r.error else "") for r in ramp)
    result = (f"{best.landed:,.0f} {unit}; latency p50 {_fmt_s(best.latency.p50_s)}, p95 "
              f"{_fmt_s(best.latency.p95_s)}" if best else f"none of the steps down to {ramp[-1].offered:,.0f} {unit}")
    name = {"mqtt": "MQTT", "opcua": "OPC UA", "modbus": "Modbus"}[protocol]
    return {"benchmark": f"{name}: highest rate sustained on this machine (ramp down from the target)",
            "result": result, "target": f"reference (sustained: ≥ 99 % of the offered load landed, p95 < "
                                        f"{LATENCY_TARGET_S:g} s, median drift < {MAX_DRIFT_S:g} s)",
            "detail": f"steps ({ramp[0].config.window_s:.0f} s windows): {steps}".replace("|", "/"),
            "value": float(best.landed) if best else 0.0, "unit": unit}


def _finite(obj: Any) -> Any:
    """``obj`` with NaN/infinite floats replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def run_protocols(names: list[str], quick: bool) -> list[dict[str, Any]]:
    """Benchmark each protocol in ``names`` (mqtt, opcua, modbus) against a private stack; report rows."""
    rows = []
    with bench_stack(with_mqtt="mqtt" in names) as stack:
        for name in names:
            sys.stderr.write(f"bench {name}: {'quick' if quick else 'full'} run at the target rate\n")
            res = bench_protocol(stack, name, default_config(name, quick))
            ramp: list[ProtocolResult] = []
            if not quick and not res.passed and not res.error:
                for fraction in RAMP:
                    cfg = default_config(name, quick, fraction)
                    sys.stderr.write(f"bench {name}: ramp step {cfg.rate:,.0f}/s\n")
                    ramp.append(bench_protocol(stack, name, cfg))
                    if ramp[-1].sustained:
                        break
            rows.append(result_row(res, ramp))
            if ramp:
                rows.append(ramp_row(name, ramp))
    return rows
