"""OPC UA collector against a real asyncua server and a real influxd.

Golden cases live in ``testcases/<case>/``: ``park.yaml`` (model fragment), ``input.yaml``
(values the server holds when the collector subscribes, then values written in order) and
``expected.lp`` (every line that must end up in InfluxDB, ``collector_stats`` aside) or
``expected.err`` (text of the error the collector must report, with nothing written).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Node, Server, ua

from lingtan.influxdb import InfluxClient
from lingtan.park.index import points_by_device
from lingtan.park.loader import load_park
from lingtan.park.model import Park, Protocol
from lingtan.settings import DEMO_PARK, Settings
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.opcua.collector import OpcUaCollector, parse_node_id
from lingtan_collectors.opcua.model import OpcUaDevice
from lingtan_collectors.opcua.simulator import OpcUaSimServer
from lingtan_collectors.opcua.state import cursor_path, dt_to_ns
from lingtan_tools.stack.services import free_port
from tests.golden import influx_lines, read_expected

HERE = Path(__file__).resolve().parent
CASES = sorted(p.name for p in (HERE / "testcases").iterdir() if (p / "input.yaml").exists())
BASE = datetime(2024, 5, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- InfluxDB helpers










# --------------------------------------------------------------------------- a real OPC UA server


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(str(text)).astimezone(UTC)


@dataclass
class OpcUaTestServer:
    """A real asyncua server with one variable per OPC UA point of a park, all historized."""

    server: Server
    port: int
    nodes: dict[str, Node] = field(default_factory=dict)  # node identifier text -> variable

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    async def write(self, node: str | int, value: float, ts: datetime, status: str = "Good",
                    vtype: str = "Double") -> None:
        """Write a value with an explicit SourceTimestamp (and status) as the device would."""
        variant = ua.Variant(float(value) if vtype in ("Double", "Float") else int(value), getattr(ua.VariantType, vtype))
        dv = ua.DataValue(variant, StatusCode=ua.StatusCode(getattr(ua.StatusCodes, status)),
                          SourceTimestamp=ts, ServerTimestamp=datetime.now(UTC))
        await self.server.write_attribute_value(self.nodes[str(node)].nodeid, dv)

    async def stop(self) -> None:
        await self.server.stop()


async def start_server(park: Park, port: int, *, initial: list[dict] | None = None,
                       extra_namespaces: list[str] | None = None, server_namespace: str | None = None) -> OpcUaTestServer:
    """Serve every OPC UA point of ``park`` under its device's namespace URI (index resolved here)."""
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    for uri in extra_namespaces or []:
        await server.register_namespace(uri)
    srv = OpcUaTestServer(server, port)
    vtypes = {str(item["node"]): item.get("type", "Double") for item in initial or []}
    for dev in (d for d in park.devices if isinstance(d, OpcUaDevice)):
        ns = await server.register_namespace(server_namespace or dev.namespace_uri)
        for ref in points_by_device(park)[dev.id]:
            nid = parse_node_id(ref.point.opcua.node_id)  # type: ignore[union-attr]
            vname = vtypes.get(str(nid.Identifier), "Double")
            zero = 0.0 if vname in ("Double", "Float") else 0
            var = await server.nodes.objects.add_variable(ua.NodeId(nid.Identifier, ns, nid.NodeIdType),
                                                          str(nid.Identifier), zero, getattr(ua.VariantType, vname))
            srv.nodes[str(nid.Identifier)] = var
    for item in initial or []:
        await srv.write(item["node"], item["value"], _ts(item["ts"]), item.get("status", "Good"), item.get("type", "Double"))
    await server.start()
    await server.historize_node_data_change(list(srv.nodes.values()), period=None, count=0)
    return srv


# --------------------------------------------------------------------------- collector harness


def make_runtime(park: Park, state_dir: Path, influx: InfluxClient, endpoint: str, name: str = "opcua") -> CollectorRuntime:
    settings = Settings(state_dir=state_dir, influx_url=influx.url, influx_db=influx.database,
                        influx_user=influx.username, influx_password=influx.password,
                        opcua_endpoint=endpoint, write_flush_interval_s=0.05)
    return CollectorRuntime(name, Protocol.opcua, park, settings, stats_interval_s=3600)


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def points_in(runtime: CollectorRuntime) -> int:
    return sum(p.points_in for p in runtime.processors.values())


class RunningCollector:
    """An OPC UA collector task on the current loop, with its own runtime (sink, WAL, cursors)."""

    def __init__(self, park: Park, state_dir: Path, influx: InfluxClient, endpoint: str):
        self.runtime = make_runtime(park, state_dir, influx, endpoint).start()
        self.collector = OpcUaCollector(self.runtime)
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(self.collector.run(self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)
        await asyncio.to_thread(self.runtime.stop)


# --------------------------------------------------------------------------- tests


def test_sample_config_is_a_valid_park() -> None:
    park = load_park(HERE / "sample.yaml")
    dev = park.devices[0]
    assert isinstance(dev, OpcUaDevice) and dev.namespace_uri == "urn:lingtan:demo"
    assert all(r.point.opcua is not None for r in points_by_device(park)[dev.id])


def test_demo_park_fits_one_connection(tmp_path: Path) -> None:
    """The 86 OPC UA points of the demo park with max_nodes_per_connection 100: one connection."""
    park = load_park(DEMO_PARK)
    runtime = make_runtime(park, tmp_path, InfluxClient("http://127.0.0.1:9", "x"), "opc.tcp://127.0.0.1:9/")
    collector = OpcUaCollector(runtime)
    assert [len(c.refs) for c in collector.connections] == [86]
    runtime.sink.wal.close()


def test_time_conversion_is_exact() -> None:
    assert dt_to_ns(datetime(2024, 5, 1, 0, 0, 2, 1, tzinfo=UTC)) == 1714521602_000001000
    assert dt_to_ns(datetime(1601, 1, 1, tzinfo=UTC)) is None
    assert dt_to_ns(None) is None


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, influx_db: InfluxClient, tmp_path: Path) -> None:
    """Model fragment + server values -> exactly the expected lines in InfluxDB (timestamps exact)."""
    cdir = HERE / "testcases" / case
    park = load_park(cdir / "park.yaml")
    spec = yaml.safe_load((cdir / "input.yaml").read_text())

    async def scenario() -> None:
        srv = await start_server(park, free_port(), initial=spec["initial"],
                                 extra_namespaces=spec.get("extra_namespaces"),
                                 server_namespace=spec.get("server_namespace"))
        assert len(spec["initial"]) == len(srv.nodes), "every variable needs an initial value"
        run = RunningCollector(park, tmp_path, influx_db, srv.endpoint)
        try:
            if "expect_connections" in spec:
                assert len(run.collector.connections) == spec["expect_connections"]
            if (cdir / "expected.err").exists():
                want = (cdir / "expected.err").read_text().strip()
                await wait_until(lambda: any(want in c.stats.last_error for c in run.collector.connections),
                                 what=f"error {want!r}")
                assert points_in(run.runtime) == 0
                return
            n_init = len(spec["initial"])
            await wait_until(lambda: points_in(run.runtime) >= n_init, what="initial values")
            for w in spec["writes"]:
                await srv.write(w["node"], w["value"], _ts(w["ts"]), w.get("status", "Good"), w.get("type", "Double"))
            total = n_init + len(spec["writes"])
            await wait_until(lambda: points_in(run.runtime) >= total, what=f"{total} values")
            await asyncio.sleep(0.3)  # nothing more may arrive
            assert points_in(run.runtime) == total
            assert all(c.stats.connected for c in run.collector.connections)
        finally:
            await run.stop()
            await srv.stop()

    asyncio.run(scenario())
    actual = influx_lines(influx_db)
    if (cdir / "expected.err").exists():
        assert actual == []
    else:
        expected = read_expected(cdir / "expected.lp")
        assert actual == expected, "actual lines:\n" + "\n".join(actual)


# --------------------------------------------------------------------------- outages


class TcpProxy:
    """A loopback TCP forwarder that can be cut (listener and live connections) and restored."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def down(self) -> None:
        """Stop accepting and reset every open connection (the network or server went away)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def _series_values(client: InfluxClient) -> dict[str, list[float]]:
    """point -> its raw values in time order (electricity and natural gas, both fields)."""
    out: dict[str, list[float]] = {}
    for s in client.series('SELECT * FROM "electricity","natural_gas" GROUP BY "point"', epoch="ns"):
        cols = s["columns"]
        for row in s["values"]:
            rec = dict(zip(cols, row, strict=True))
            out.setdefault(s["tags"]["point"], []).append(rec.get("total") if rec.get("total") is not None
                                                          else rec.get("rate"))
    return out


SPLIT_PARK = HERE / "testcases" / "split" / "park.yaml"
NODES = ["m1.Total", "m1.Rate", "m2.Total", "m2.Rate", "m3.Total"]


async def _round(srv: OpcUaTestServer, k: int) -> None:
    """One new value (100 + k, at BASE + k s) on every node."""
    for node in NODES:
        await srv.write(node, 100.0 + k, BASE + timedelta(seconds=k))


def test_restart_backfills_values_written_while_down_exactly_once(influx_db: InfluxClient, tmp_path: Path) -> None:
    """Stop the collector, write values, start it again: the history back-fill delivers each once."""
    park = load_park(SPLIT_PARK)

    async def scenario() -> tuple[int, int]:
        srv = await start_server(park, free_port(), initial=[{"node": n, "value": 100.0, "ts": BASE.isoformat()}
                                                             for n in NODES])
        try:
            run = RunningCollector(park, tmp_path, influx_db, srv.endpoint)
            await wait_until(lambda: points_in(run.runtime) >= 5, what="initial values")
            for k in range(1, 4):
                await _round(srv, k)
            await wait_until(lambda: points_in(run.runtime) >= 20, what="first run")
            await run.stop()
            cursor = json.loads(cursor_path(run.runtime).read_text())
            assert cursor["devices"]["plc"]["m3.total"] == dt_to_ns(BASE + timedelta(seconds=3))

            for k in range(4, 10):  # the collector is down: 30 values only the server's history has
                await _round(srv, k)
            await asyncio.sleep(0.2)

            run2 = RunningCollector(park, tmp_path, influx_db, srv.endpoint)
            await wait_until(lambda: points_in(run2.runtime) >= 30, what="back-fill")
            for k in range(10, 12):
                await _round(srv, k)
            await wait_until(lambda: points_in(run2.runtime) >= 40, what="live values after back-fill")
            await asyncio.sleep(0.3)
            backfilled = sum(c.stats.backfilled for c in run2.collector.connections)
            await run2.stop()
            return points_in(run2.runtime), backfilled
        finally:
            await srv.stop()

    second_run, backfilled = asyncio.run(scenario())
    assert second_run == 40 and backfilled == 30
    values = _series_values(influx_db)
    assert len(values) == 5
    for point, vals in values.items():
        assert vals == [100.0 + k for k in range(12)], point  # initial + 11 rounds, each exactly once


def test_disconnect_reconnects_and_backfills(influx_db: InfluxClient, tmp_path: Path) -> None:
    """The connection drops (server unreachable) while values change; after reconnect nothing is missing."""
    park = load_park(SPLIT_PARK)

    async def scenario() -> list[int]:
        srv = await start_server(park, free_port(), initial=[{"node": n, "value": 100.0, "ts": BASE.isoformat()}
                                                             for n in NODES])
        proxy = TcpProxy(srv.port)
        await proxy.up()
        try:
            run = RunningCollector(park, tmp_path, influx_db, f"opc.tcp://127.0.0.1:{proxy.port}/")
            await wait_until(lambda: points_in(run.runtime) >= 5, what="initial values")
            await _round(srv, 1)
            await wait_until(lambda: points_in(run.runtime) >= 10, what="round 1")
            await proxy.down()
            await wait_until(lambda: not any(c.stats.connected for c in run.collector.connections),
                             what="disconnect noticed")
            for k in range(2, 6):
                await _round(srv, k)
            await asyncio.sleep(0.5)
            await proxy.up()
            await wait_until(lambda: points_in(run.runtime) >= 30, timeout=15, what="back-fill after reconnect")
            await _round(srv, 6)
            await wait_until(lambda: points_in(run.runtime) >= 35, what="round 6")
            await asyncio.sleep(0.3)
            assert points_in(run.runtime) == 35
            connects = [c.stats.connects for c in run.collector.connections]
            await run.stop()
            return connects
        finally:
            await proxy.down()
            await srv.stop()

    connects = asyncio.run(scenario())
    assert connects == [2, 2, 2]
    for point, vals in _series_values(influx_db).items():
        assert vals == [100.0 + k for k in range(7)], point


def test_server_restart(influx_db: InfluxClient, tmp_path: Path) -> None:
    """The server stops and comes back (fresh address space): the collector reconnects by itself."""
    park = load_park(SPLIT_PARK)
    port = free_port()

    async def scenario() -> None:
        initial = [{"node": n, "value": 100.0, "ts": BASE.isoformat()} for n in NODES]
        srv = await start_server(park, port, initial=initial)
        run = RunningCollector(park, tmp_path, influx_db, srv.endpoint)
        try:
            await wait_until(lambda: points_in(run.runtime) >= 5, what="initial values")
            await srv.stop()
            await wait_until(lambda: not any(c.stats.connected for c in run.collector.connections),
                             what="disconnect noticed")
            restarted = [{**i, "value": 101.0, "ts": (BASE + timedelta(seconds=1)).isoformat()} for i in initial]
            srv = await start_server(park, port, initial=restarted)
            await wait_until(lambda: points_in(run.runtime) >= 10, timeout=15, what="values after restart")
            await _round(srv, 2)
            await wait_until(lambda: points_in(run.runtime) >= 15, what="round 2")
            await asyncio.sleep(0.3)
            assert points_in(run.runtime) == 15
        finally:
            await run.stop()
            await srv.stop()

    asyncio.run(scenario())
    for point, vals in _series_values(influx_db).items():
        assert vals == [100.0, 101.0, 102.0], point


# --------------------------------------------------------------------------- the project's simulator


def _timestamps_by_point(client: InfluxClient) -> dict[str, list[int]]:
    """point -> sorted timestamps of its raw values and data-quality records (demo park)."""
    out: dict[str, set[int]] = {}
    for s in client.series('SELECT * FROM /.*/ WHERE "protocol" = \'opcua\' GROUP BY "point"', epoch="ns"):
        point = s["tags"]["point"]
        if not point:  # collector_stats
            continue
        for row in s["values"]:
            out.setdefault(point, set()).add(row[0])
    return {p: sorted(ts) for p, ts in out.items()}


def _served_timestamps(sim: Any) -> dict[str, list[int]]:
    """point -> sorted SourceTimestamps [ns] of every value the simulator's OPC UA servers wrote
    (their HistoryRead storage): a tick the simulator skipped while its loop lagged is not there."""
    out: dict[str, list[int]] = {}
    for plugin_server in sim.servers:
        opcua = getattr(plugin_server, "server", None)
        if not isinstance(opcua, OpcUaSimServer):
            continue
        for var in opcua.vars:
            values = opcua.history._datachanges[var.nodeid]  # asyncua's in-memory HistoryDict
            out[var.ref.id] = sorted(dt_to_ns(dv.SourceTimestamp) for dv in values)
    return out


def test_demo_park_simulator_restart_without_gaps(influx_db: InfluxClient, tmp_path: Path) -> None:
    """The project's simulator serves the 86 demo points (one connection); the collector stops
    for a few ticks and comes back: every value the server wrote from a point's first collected
    value on is in InfluxDB, once, and nothing else. (Under load the simulator may skip a tick;
    a skipped tick is in neither, so the comparison is with the server's own history.)"""
    from lingtan_tools.simulate.runner import Simulator

    park = load_park(DEMO_PARK)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/"
    settings = Settings(state_dir=tmp_path / "sim", opcua_endpoint=endpoint, weather_feed_url="off")
    tick_s = 0.2

    async def scenario() -> tuple[int, int, dict[str, list[int]]]:
        async with Simulator(park, settings, seed=7, fault_rate=0.0, protocols={"opcua"}, tick_s=tick_s) as sim:
            run = RunningCollector(park, tmp_path, influx_db, endpoint)
            await wait_until(lambda: points_in(run.runtime) >= 86, what="initial values")
            await sim.wait_ticks(5)
            await run.stop()
            await sim.wait_ticks(8)  # collector down
            run = RunningCollector(park, tmp_path, influx_db, endpoint)
            await sim.wait_ticks(5)
            last = sim.tick
            last_ns = dt_to_ns(sim.engine.time_at(last))
            seen = run.collector.cursors.seen_for("scada-opcua")
            await wait_until(lambda: len(seen) == 86 and min(seen.values()) >= last_ns, what=f"tick {last} everywhere")
            backfilled = run.collector.connections[0].stats.backfilled
            await run.stop()
            return last_ns, backfilled, _served_timestamps(sim)

    last_ns, backfilled, served = asyncio.run(scenario())
    assert backfilled >= 86 * 8
    stamps = _timestamps_by_point(influx_db)
    assert len(stamps) == 86 and set(served) == set(stamps)
    for point, ts in stamps.items():
        assert ts[-1] >= last_ns, point
        expected = [t for t in served[point] if ts[0] <= t <= ts[-1]]
        missing, extra = sorted(set(expected) - set(ts)), sorted(set(ts) - set(expected))
        assert not missing and not extra and len(ts) == len(expected), \
            f"{point}: missing {missing[:5]}, not served {extra[:5]}"
