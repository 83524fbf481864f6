"""Throughput benchmark: value changes per second from a real OPC UA server into the sink.

Runs an asyncua server in a child process that writes new values to ``--nodes`` variables as
fast as it can (or at ``--rate`` changes/s), and the real collector (``OpcUaCollector`` with
a ``CollectorRuntime``, its write-ahead log and a real influxd) in this process. Reports the
rate at which value changes were submitted to the sink, and checks none was lost.

    .venv/bin/python -m lingtan_tools.bench.opcua_subscribe --nodes 200 --seconds 10 --lean

Loopback only; the influxd is started in a temporary state dir and stopped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from asyncua import Server, ua

from lingtan.influxdb import InfluxClient
from lingtan.park.model import Park, Protocol
from lingtan.settings import Settings
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.opcua.collector import OpcUaCollector
from lingtan_tools.stack.services import LocalInflux, free_port

NAMESPACE = "urn:lingtan:bench"
BASE = datetime(2024, 5, 1, tzinfo=UTC)


def bench_park(nodes: int, per_connection: int, publishing_ms: int, ports: list[int]) -> Park:
    """A park with one OPC UA device per server port, each with ``nodes`` rate points ``b<i>.Rate``."""
    meters, devices = [], []
    for j, port in enumerate(ports):
        devices.append({"id": f"plc{j}", "protocol": "opcua", "namespace_uri": NAMESPACE,
                        "endpoint": f"opc.tcp://127.0.0.1:{port}/", "publishing_interval_ms": publishing_ms,
                        "max_nodes_per_connection": per_connection})
        points = [{"id": f"d{j}.b{i}.rate", "kind": "rate", "unit": "kW", "role": "consumption",
                   "opcua": {"node_id": f"ns=2;s=b{i}.Rate"}} for i in range(nodes)]
        meters.append({"id": f"m{j}", "name": "m", "carrier": "electricity", "device": f"plc{j}", "points": points})
    return Park.model_validate({
        "park": {"id": "bench", "name": "bench", "province": "江苏", "grid_region": "east_china",
                 "location": {"latitude": 31.5, "longitude": 120.3}},
        "devices": devices,
        "enterprises": [{"id": "e1", "name": "bench", "credit_code": "91320214MA20UA001F", "industry_code": "C3971",
                         "units": [{"id": "u1", "name": "u", "meters": meters}]}],
    })


def _lean_server() -> None:
    """Load-generator only: skip the deep copy asyncua makes of every value per monitored item.

    That copy costs the *server* ~100 us per write and caps one asyncua server process at a few
    thousand changes/s, below what the collector can take; it does not touch the client side.
    """
    from asyncua.server import monitored_item_service as mis

    def set_current_datavalue(self: mis.MonitoredItemValues, cur_val: ua.DataValue) -> None:
        self.old_dvalue, self.current_dvalue = self.current_dvalue, cur_val

    mis.MonitoredItemValues.set_current_datavalue = set_current_datavalue  # type: ignore[method-assign]


def _server_main(port: int, nodes: int, seconds: float, rate: float, ready: mp.Event, go: mp.Event,
                 written: mp.Value, lean: bool) -> None:
    if lean:
        _lean_server()
    asyncio.run(_serve(port, nodes, seconds, rate, ready, go, written))


async def _serve(port: int, nodes: int, seconds: float, rate: float, ready: mp.Event, go: mp.Event,
                 written: mp.Value) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(NAMESPACE)
    ids = []
    for i in range(nodes):
        var = await server.nodes.objects.add_variable(ua.NodeId(f"b{i}.Rate", idx), f"b{i}.Rate", 0.0)
        ids.append(var.nodeid)
    async with server:
        ready.set()
        while not go.is_set():
            await asyncio.sleep(0.01)
        n, start = 0, time.monotonic()
        step = timedelta(microseconds=1)
        while time.monotonic() - start < seconds:
            for nid in ids:
                n += 1
                dv = ua.DataValue(ua.Variant(float(n % 1000), ua.VariantType.Double),
                                  SourceTimestamp=BASE + n * step, ServerTimestamp=BASE + n * step)
                await server.write_attribute_value(nid, dv)
            if rate > 0:
                ahead = n / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            else:
                await asyncio.sleep(0)  # let the server publish
        written.value = n
        await asyncio.sleep(3.0)  # keep serving until the collector has drained


class _Measurement(NamedTuple):
    total: int  # changes the servers wrote
    got: int  # changes the collector received
    elapsed: float  # [s], from go to the end of the drain
    cpu: float  # collector process CPU time over the same span [s]
    samples: list[tuple[float, int]]  # (time since go [s], values submitted to the sink), every second


def _start_servers(ctx: Any, ports: list[int], go: Any, args: argparse.Namespace) -> list[tuple[Any, Any, Any]]:
    """One load-generating server process per port; (process, ready event, changes written) of each."""
    servers = []
    for port in ports:
        ready, written = ctx.Event(), ctx.Value("q", 0)
        proc = ctx.Process(target=_server_main, daemon=True,
                           args=(port, args.nodes, args.seconds, args.rate / args.servers, ready, go, written, args.lean))
        proc.start()
        servers.append((proc, ready, written))
    return servers


def _received(runtime: CollectorRuntime) -> int:
    return sum(p.points_in for p in runtime.processors.values())


async def _measure(args: argparse.Namespace, runtime: CollectorRuntime, collector: OpcUaCollector,
                   servers: list[tuple[Any, Any, Any]], go: Any) -> _Measurement:
    """Wait for the initial values, let the servers go, sample the sink each second, then wait (10 s at most) for the drain."""
    while _received(runtime) < args.nodes * args.servers:  # initial values
        await asyncio.sleep(0.05)
    base_in = _received(runtime)
    go.set()
    t0, cpu0 = time.monotonic(), time.process_time()
    samples = []
    while any(w.value == 0 for _, _, w in servers):
        await asyncio.sleep(1.0)
        samples.append((time.monotonic() - t0, collector.batcher.submitted_values))
    total = sum(w.value for _, _, w in servers)
    deadline = time.monotonic() + 10
    while _received(runtime) - base_in < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    got = _received(runtime) - base_in
    return _Measurement(total, got, elapsed, cpu, samples)


def _report(args: argparse.Namespace, m: _Measurement, runtime: CollectorRuntime, collector: OpcUaCollector) -> None:
    """Print the write and receive rates, losses, collector CPU per change and the sink's counters."""
    total, got, elapsed, cpu, samples = m
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples, samples[1:], strict=False)]
    print(f"{args.servers} server(s) wrote {total} changes in {args.seconds:.0f}s "
          f"({total / args.seconds:,.0f}/s); collector received {got} "
          f"({got / elapsed:,.0f}/s overall incl. drain), lost {total - got}")
    if rates:
        print(f"submitted per second (1 s windows): min {min(rates):,.0f}, median "
              f"{sorted(rates)[len(rates) // 2]:,.0f}, max {max(rates):,.0f}")
    print(f"collector process CPU: {cpu:.2f} s for {got} changes = {cpu / max(got, 1) * 1e6:.0f} us/change "
          f"(one core saturates at ~{got / max(cpu, 1e-9):,.0f} changes/s)")
    stats = runtime.sink.stats
    print(f"sink: accepted {stats.accepted}, written to InfluxDB {stats.written}, batches {stats.batches}, "
          f"connections {len(collector.connections)}")


async def _collect(args: argparse.Namespace, state: Path, influx: LocalInflux) -> None:
    ports = [free_port() for _ in range(args.servers)]
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    servers = _start_servers(ctx, ports, go, args)
    try:
        for _, ready, _ in servers:
            while not ready.is_set():
                await asyncio.sleep(0.05)
        park = bench_park(args.nodes, args.per_connection, args.publishing_ms, ports)
        settings = Settings(state_dir=state, influx_url=influx.url, influx_db="bench", influx_user="bench",
                            influx_password="bench")
        runtime = CollectorRuntime("opcua-bench", Protocol.opcua, park, settings).start()
        collector = OpcUaCollector(runtime)
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        m = await _measure(args, runtime, collector, servers, go)
        stop.set()
        await task
        await asyncio.to_thread(runtime.sink.flush, 60)
        await asyncio.to_thread(runtime.stop)
        _report(args, m, runtime, collector)
    finally:
        for proc, _, _ in servers:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def main() -> None:
    """Parse arguments, start influxd in a temporary dir, run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--per-connection", type=int, default=100)
    ap.add_argument("--publishing-ms", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=0.0, help="changes/s the servers write (0: as fast as they can)")
    ap.add_argument("--servers", type=int, default=1, help="server processes (one device each)")
    ap.add_argument("--lean", action="store_true", help="skip the server's per-item deep copy (faster load)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="opcua-bench-") as tmp:
        influx = LocalInflux(Path(tmp) / "influx-state", free_port())
        influx.start()
        try:
            InfluxClient(influx.url, "").query(  # the first user may be created without credentials
                "CREATE USER bench WITH PASSWORD 'bench' WITH ALL PRIVILEGES", database="")
            InfluxClient(influx.url, "", "bench", "bench").query("CREATE DATABASE bench", database="")
            asyncio.run(_collect(args, Path(tmp) / "state", influx))
        finally:
            influx.stop()


if __name__ == "__main__":
    main()
