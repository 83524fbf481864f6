"""OPC UA collector: subscriptions (not polling), history back-fill, reconnect with backoff.

For every OPC UA device of the park the collector opens one or more client connections
(``device.max_nodes_per_connection`` monitored items each), resolves the namespace index of
``device.namespace_uri`` on the server, rewrites each point's node id to that index and
creates one subscription per connection (publishing interval ``device.publishing_interval_ms``,
sampling interval 0, a server-side queue of :data:`QUEUE_SIZE` values per item).

Every data change goes through the device's :class:`~lingtan_collectors.common.quality.PointProcessor`:
a Good value with ``good()`` (timestamp: SourceTimestamp, else ServerTimestamp, else now),
a Bad or Uncertain one with ``bad(point, "bad_status", ...)``. Lines are batched for at most
100 ms before one ``runtime.submit``. After each submit the per-point cursor (timestamp of the
last value) is recorded and saved to ``<state_dir>/run/<name>.opcua-cursor.json``; on every
(re)connect the collector subscribes first, then HistoryReads each point from its cursor
(exclusive) to now and feeds those values in order, so values produced while the collector
was down or disconnected are not lost and none is emitted twice. See README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent, Subscription

from lingtan.park.index import PointRef
from lingtan_collectors.common.quality import PointProcessor
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.opcua.model import OpcUaDevice
from lingtan_collectors.opcua.state import Batcher, CursorStore, cursor_path, dt_to_ns, ns_to_dt

log = logging.getLogger(__name__)

#: server-side queue per monitored item: values kept between two publish cycles (discard oldest)
QUEUE_SIZE = 1000
#: 0 = the fastest sampling the server supports (report every change)
SAMPLING_INTERVAL_MS = 0.0
#: client-side notification queue per subscription; on overflow the connection is dropped and
#: re-established, and the history back-fill recovers what did not fit
EVENT_QUEUE_MAX = 200_000
#: at most this many lines per runtime.submit, and at most this long between submits
BATCH_MAX_LINES = 5000
BATCH_WINDOW_S = 0.1
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0
LOG_INTERVAL_S = 60.0
REQUEST_TIMEOUT_S = 10.0
WATCHDOG_S = 5.0
#: nodes per HistoryRead request, and how far apart their cursors may be to share one StartTime
HISTORY_NODES_PER_REQUEST = 20
HISTORY_GROUP_SPAN = timedelta(minutes=5)
#: EndTime of every back-fill read: far in the future, because the source clock of a device (or
#: the simulator's simulated clock, running at ``speed``) may be well ahead of ours
HISTORY_END = datetime(2200, 1, 1, tzinfo=UTC)
HISTORY_MAX_PAGES = 10_000


class ConnectionLost(Exception):
    """The server went away, the subscription died or its notification queue overflowed."""


class _RateLimitedLog:
    """Logs a recurring problem once, then at most once per interval with a repeat count."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S):
        self.interval_s = interval_s
        self._last = -1e18
        self._suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            suffix = f" ({self._suppressed} similar messages suppressed)" if self._suppressed else ""
            log.warning(msg + suffix, *args)
            self._last, self._suppressed = now, 0
        else:
            self._suppressed += 1

    def reset(self) -> None:
        self._last, self._suppressed = -1e18, 0


def redact(url: str) -> str:
    """``url`` without the password of ``opc.tcp://user:password@host`` (for logs and errors)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hostpart}"


def parse_node_id(text: str) -> ua.NodeId:
    """Parse a binding's node id (``ns=2;s=m1.Total``, ``s=...``, ``i=...``, ``g=...``)."""
    return ua.NodeId.from_string(text)


def with_namespace(node_id: ua.NodeId, ns_index: int) -> ua.NodeId:
    """``node_id`` moved to namespace ``ns_index`` (the index resolved from the namespace URI)."""
    return ua.NodeId(node_id.Identifier, ns_index, node_id.NodeIdType)


def split_points(refs: list[PointRef], max_nodes: int) -> list[list[PointRef]]:
    """The OPC UA points of a device in chunks of at most ``max_nodes`` (one chunk per connection)."""
    bound = [r for r in refs if r.point.opcua is not None]
    return [bound[i:i + max_nodes] for i in range(0, len(bound), max_nodes)]


def value_timestamp(dv: ua.DataValue) -> int:
    """Epoch ns of a DataValue: SourceTimestamp, else ServerTimestamp, else now."""
    ts = dt_to_ns(dv.SourceTimestamp)
    if ts is None:
        ts = dt_to_ns(dv.ServerTimestamp)
    return ts if ts is not None else time.time_ns()


@dataclass
class ConnectionStats:
    """Counters of one connection (exposed for tests and benchmarks)."""

    connects: int = 0
    notifications: int = 0
    backfilled: int = 0
    duplicates: int = 0
    last_error: str = ""
    connected: bool = False


@dataclass
class _Connection:
    """One client connection with one subscription over a chunk of a device's points."""

    device: OpcUaDevice
    endpoint: str
    refs: list[PointRef]
    index: int
    processor: PointProcessor
    batcher: Batcher
    cursors: CursorStore
    stats: ConnectionStats = field(default_factory=ConnectionStats)

    def __post_init__(self) -> None:
        assert all(r.point.opcua is not None for r in self.refs)
        self.name = f"{self.device.id}#{self.index}"
        self.where = redact(self.endpoint)
        self._node_ids = {r.id: parse_node_id(r.point.opcua.node_id) for r in self.refs}  # type: ignore[union-attr]
        self._by_node: dict[ua.NodeId, str] = {}
        self._handles: list[str] = []  # monitored item client handle -> point id
        self._seen = self.cursors.seen_for(self.device.id)
        self._overlap: dict[str, list[Any]] = {}  # point -> [emitted timestamps, newest]
        self._log = _RateLimitedLog()

    # ------------------------------------------------------------------ values
    def handle_value(self, point_id: str, dv: ua.DataValue, *, live: bool = True) -> None:
        """Turn one DataValue into lines and queue them, unless it was emitted already.

        After a (re)connect the history back-fill and the new subscription overlap: the
        subscription's first notification repeats the current value, and values written
        during the back-fill arrive both ways. ``_overlap`` holds, per point, the timestamps
        emitted since the cursor; a live value with one of those is a duplicate. The window
        closes with the first live value newer than all of them, so a device clock that steps
        back later never makes the collector drop values.
        """
        ts = value_timestamp(dv)
        overlap = self._overlap.get(point_id)
        if overlap is not None:
            stamps, newest = overlap
            if ts in stamps or (not live and ts <= newest):
                self.stats.duplicates += 1
                return
            if live:
                if ts > newest:
                    del self._overlap[point_id]
            else:
                stamps.add(ts)
                overlap[1] = ts
        self._seen[point_id] = ts
        status = dv.StatusCode
        if status is None or status.is_good():
            value = dv.Value.Value if dv.Value is not None else None
            lines = self.processor.good(point_id, value, ts)
        else:
            lines = self.processor.bad(point_id, "bad_status", ts, f"status {status.name}")
        self.batcher.add(self.device.id, point_id, lines, ts)

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        """Connect, collect, and reconnect with exponential backoff until ``stop`` is set."""
        delay = BACKOFF_INITIAL_S
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self._session(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure of a session means: back off and reconnect
                self.stats.last_error = f"{exc.__class__.__name__}: {exc}"
                self._log.warning("OPC UA %s at %s: %s; reconnecting with backoff (now %.0fs)",
                                  self.name, self.where, self.stats.last_error, delay)
            finally:
                self.stats.connected = False
            if stop.is_set():
                return
            if time.monotonic() - started > BACKOFF_MAX_S:
                delay = BACKOFF_INITIAL_S  # it had been up for a while: retry quickly
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _session(self, stop: asyncio.Event) -> None:
        # probe the server every WATCHDOG_S, allowing as long for the answer (a busy loop is not a dead server)
        client = Client(self.endpoint, timeout=REQUEST_TIMEOUT_S, watchdog_intervall=WATCHDOG_S)
        client.name = client.description = f"lingtan {self.name}"
        lost = asyncio.Event()
        reason: list[str] = []

        async def on_lost(exc: Exception) -> None:
            reason.append(f"connection lost: {exc!r}")
            lost.set()

        def on_overflow() -> None:
            reason.append(f"notification queue overflow (> {EVENT_QUEUE_MAX})")
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            await asyncio.wait_for(client.connect(), REQUEST_TIMEOUT_S * 2)
            ns = await self._resolve_namespace(client)
            self._by_node = {with_namespace(nid, ns): pid for pid, nid in self._node_ids.items()}
            sub = await self._subscribe(client, on_overflow)
            self.stats.connects += 1
            self.stats.connected = True
            if self.stats.connects > 1:
                log.info("OPC UA %s reconnected to %s", self.name, self.where)
            self._log.reset()
            await self._backfill(client)
            consumer = asyncio.create_task(self._consume(sub, lost, reason), name=f"opcua-{self.name}")
            stopper = asyncio.create_task(stop.wait())
            loser = asyncio.create_task(lost.wait())
            try:
                await asyncio.wait({consumer, stopper, loser}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (consumer, stopper, loser):
                    task.cancel()
                await asyncio.gather(consumer, stopper, loser, return_exceptions=True)
            if consumer.done() and not consumer.cancelled() and consumer.exception() is not None:
                raise consumer.exception()  # type: ignore[misc]
            if lost.is_set() and not stop.is_set():
                raise ConnectionLost(reason[0] if reason else "connection lost")
        finally:
            await self._close(client)

    async def _close(self, client: Client) -> None:
        with contextlib.suppress(Exception):  # the server may already be gone
            await asyncio.wait_for(client.disconnect(), 3.0)
        with contextlib.suppress(Exception):
            client.disconnect_socket()

    async def _resolve_namespace(self, client: Client) -> int:
        uris = await client.get_namespace_array()
        try:
            return uris.index(self.device.namespace_uri)
        except ValueError:
            raise ConnectionError(f"namespace {self.device.namespace_uri!r} not on the server "
                                  f"(it has {uris})") from None

    async def _subscribe(self, client: Client, on_overflow: Any) -> Subscription:
        """One subscription with a monitored item per point (client handle = index in ``_handles``).

        The filter's trigger is StatusValueTimestamp: a new SourceTimestamp is reported even when
        the value did not change (a standby genset at 0 kW is sampled, not stale), like history.
        """
        sub = await client.create_subscription(
            float(self.device.publishing_interval_ms), queue_maxsize=EVENT_QUEUE_MAX,
            overflow=OverflowPolicy.DISCONNECT,
        )
        sub.set_overflow_disconnect_handler(on_overflow)
        self._handles = list(self._by_node.values())
        mfilter = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        requests = [
            ua.MonitoredItemCreateRequest(
                ItemToMonitor=ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.Value),
                MonitoringMode=ua.MonitoringMode.Reporting,
                RequestedParameters=ua.MonitoringParameters(
                    ClientHandle=handle, SamplingInterval=SAMPLING_INTERVAL_MS, Filter=mfilter,
                    QueueSize=QUEUE_SIZE, DiscardOldest=True),
            )
            for handle, nid in enumerate(self._by_node)
        ]
        results = await sub.create_monitored_items(requests)
        failed = [(nid, res) for nid, res in zip(self._by_node, results, strict=True) if isinstance(res, ua.StatusCode)]
        now = time.time_ns()
        lines: list[str] = []
        for nid, res in failed:
            lines += self.processor.bad(self._by_node[nid], "bad_status", now,
                                        f"cannot monitor {nid.to_string()}: status {res.name}")
        if failed:
            self._log.warning("OPC UA %s: %d of %d nodes cannot be monitored (first: %s %s)", self.name,
                              len(failed), len(requests), failed[0][0].to_string(), failed[0][1].name)
            self.batcher.add_lines(lines)
        return sub

    async def _consume(self, sub: Subscription, lost: asyncio.Event, reason: list[str]) -> None:
        handles = self._handles
        stats = self.stats
        async for ev in sub:
            if isinstance(ev, DataChangeEvent):
                item = ev.data.monitored_item
                stats.notifications += 1
                self.handle_value(handles[item.ClientHandle], item.Value)
            elif isinstance(ev, StatusChangeEvent) and not ev.notification.Status.is_good():
                reason.append(f"subscription status {ev.notification.Status.name}")
                lost.set()
                return
        raise ConnectionLost("the subscription was closed")

    # ------------------------------------------------------------------ back-fill
    async def _backfill(self, client: Client) -> None:
        """HistoryRead every point with a cursor from that cursor to now and emit the values in order."""
        todo = [(nid, pid, self._seen[pid]) for nid, pid in self._by_node.items() if pid in self._seen]
        self._overlap = {pid: [{ts}, ts] for _, pid, ts in todo}
        if not todo:
            return
        todo.sort(key=lambda t: t[2])
        before = self.stats.duplicates
        total = 0
        for group in _history_groups(todo):
            start = ns_to_dt(group[0][2])
            values = await self._history_read(client, [nid for nid, _, _ in group], start, HISTORY_END)
            for (_, pid, _), dvs in zip(group, values, strict=True):
                dvs.sort(key=value_timestamp)
                for dv in dvs:
                    self.handle_value(pid, dv, live=False)
                total += len(dvs)
        total -= self.stats.duplicates - before
        self.stats.backfilled += total
        if total:
            log.info("OPC UA %s: back-filled %d values from history", self.name, total)

    async def _history_read(self, client: Client, node_ids: list[ua.NodeId], start: datetime,
                            end: datetime) -> list[list[ua.DataValue]]:
        details = ua.ReadRawModifiedDetails(IsReadModified=False, StartTime=start, EndTime=end,
                                            NumValuesPerNode=0, ReturnBounds=False)
        out: list[list[ua.DataValue]] = [[] for _ in node_ids]
        pending = {i: None for i in range(len(node_ids))}  # index -> continuation point
        for _ in range(HISTORY_MAX_PAGES):
            if not pending:
                break
            order = list(pending)
            params = ua.HistoryReadParameters(
                HistoryReadDetails=details, TimestampsToReturn=ua.TimestampsToReturn.Both,
                ReleaseContinuationPoints=False,
                NodesToRead=[ua.HistoryReadValueId(NodeId=node_ids[i], ContinuationPoint=pending[i]) for i in order],
            )
            results = await client.uaclient.history_read(params)
            nxt: dict[int, bytes | None] = {}
            for i, res in zip(order, results, strict=True):
                if not res.StatusCode.is_good():
                    self._log.warning("OPC UA %s: no history for %s (status %s); values produced while "
                                      "disconnected are lost for it", self.name, node_ids[i].to_string(),
                                      res.StatusCode.name)
                    continue
                out[i].extend(getattr(res.HistoryData, "DataValues", None) or [])
                if res.ContinuationPoint and res.ContinuationPoint != pending[i]:
                    nxt[i] = res.ContinuationPoint
            pending = nxt
        return out


def _history_groups(todo: list[tuple[ua.NodeId, str, int]]) -> Iterable[list[tuple[ua.NodeId, str, int]]]:
    """Cursor-sorted nodes in groups that share one HistoryRead (close cursors, bounded size)."""
    span_ns = int(HISTORY_GROUP_SPAN.total_seconds() * 1e9)
    group: list[tuple[ua.NodeId, str, int]] = []
    for item in todo:
        if group and (len(group) >= HISTORY_NODES_PER_REQUEST or item[2] - group[0][2] > span_ns):
            yield group
            group = []
        group.append(item)
    if group:
        yield group


class OpcUaCollector:
    """All OPC UA connections of one collector process, sharing one batcher and cursor file."""

    def __init__(self, runtime: CollectorRuntime, *, batch_window_s: float = BATCH_WINDOW_S,
                 batch_max_lines: int = BATCH_MAX_LINES):
        self.runtime = runtime
        self.cursors = CursorStore(cursor_path(runtime))
        self.batcher = Batcher(runtime, self.cursors, max_lines=batch_max_lines, window_s=batch_window_s)
        self.connections: list[_Connection] = []
        for device in runtime.devices:
            if not isinstance(device, OpcUaDevice):
                continue
            endpoint = device.endpoint or runtime.settings.opcua_endpoint
            chunks = split_points(runtime.points[device.id], device.max_nodes_per_connection)
            for i, chunk in enumerate(chunks):
                self.connections.append(_Connection(device, endpoint, chunk, i, runtime.processors[device.id],
                                                    self.batcher, self.cursors))

    async def run(self, stop: asyncio.Event) -> None:
        """Run every connection until ``stop`` is set; then flush and save the cursors."""
        if not self.connections:
            log.warning("no OPC UA points in the park model; nothing to collect")
        log.info("OPC UA collector %s: %d connection(s) for %d device(s)", self.runtime.name,
                 len(self.connections), len({c.device.id for c in self.connections}))
        tasks = [asyncio.create_task(c.run(stop), name=f"opcua-{c.name}") for c in self.connections]
        tasks.append(asyncio.create_task(self.batcher.run(stop), name="opcua-batcher"))
        try:
            await stop.wait()
            await asyncio.wait(tasks, timeout=10.0)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.batcher.flush()
            self.cursors.save(force=True)


async def run_opcua(runtime: CollectorRuntime, stop: asyncio.Event) -> None:
    """Collect every OPC UA device of ``runtime`` until ``stop`` is set.

    ``runtime`` must already be started (its sink running); this coroutine only submits lines.
    """
    await OpcUaCollector(runtime).run(stop)


def main(runtime: CollectorRuntime) -> None:
    """Blocking entry point for the CLI: start ``runtime``, collect until SIGTERM/SIGINT, stop it.

    Pass a runtime that has not been started; it is stopped (sink flushed) before returning.
    """
    runtime.start()

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        await run_opcua(runtime, stop)

    try:
        asyncio.run(_main())
    finally:
        runtime.stop()
