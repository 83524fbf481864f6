"""Modbus TCP collector: polls holding/input registers of every Modbus device of the park.

One :class:`ModbusPoller` per device. Each poll cycle belongs to a *slot* of the device's
``poll_interval_s`` grid (slot ``k`` starts at ``k * interval`` since the Unix epoch); the
cycle starts at the slot boundary and every sample of it is timestamped with the slot
start, so a series gets at most one sample per slot, and a restart can never produce a
near-duplicate timestamp (a re-read slot would overwrite the same InfluxDB point).

Requests on one Modbus TCP connection are strictly serial (one outstanding transaction,
as the Modbus spec and pymodbus require). A device whose points span several unit ids
(a gateway in front of an RS-485 bus, or a multi-unit meter rack) is polled over up to
:data:`MAX_CONNECTIONS` connections ("lanes") in parallel, the units spread over them, so
the request rate scales with the number of lanes (the round trip, not the CPU, bounds one
connection). A unit that stops answering is polled over one more connection, the probe
lane, until it answers again, so its timeouts do not hold up the units of its home lane.

Failures (data-quality reasons, see :mod:`lingtan_collectors.common.quality`):

* no answer within ``timeout_s`` after ``retries`` retries, or no connection ->
  ``timeout`` for the request's points and every later point of that unit in the cycle;
  the unit then backs off exponentially (1, 2, 4, ... intervals, at most
  ``backoff_max_s``) while the other units keep their schedule;
* an exception response -> ``exception`` for the request's points, naming the code; codes
  10/11 (gateway path unavailable / target failed to respond) mean the unit is unreachable
  and back off like a timeout; code 2 on a request that bridges a gap splits it for good;
* a response that cannot be decoded -> ``parse_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException

from lingtan.park.index import PointRef
from lingtan.settings import Settings
from lingtan_collectors.common.quality import PointProcessor
from lingtan_collectors.common.runtime import CollectorRuntime
from lingtan_collectors.modbus.model import ModbusDevice
from lingtan_collectors.modbus.plan import (
    MAX_GAP,
    DecodeError,
    ReadRequest,
    assign_lanes,
    plan_requests,
    requests_by_unit,
)

log = logging.getLogger(__name__)

#: most TCP connections opened to one device (one per unit id up to this many)
MAX_CONNECTIONS = 4
#: exception codes meaning "the unit behind the gateway is unreachable": handled like a timeout
GATEWAY_UNREACHABLE = frozenset({0x0A, 0x0B})
EXCEPTION_NAMES = {
    0x01: "ILLEGAL FUNCTION",
    0x02: "ILLEGAL DATA ADDRESS",
    0x03: "ILLEGAL DATA VALUE",
    0x04: "SERVER DEVICE FAILURE",
    0x05: "ACKNOWLEDGE",
    0x06: "SERVER DEVICE BUSY",
    0x07: "NEGATIVE ACKNOWLEDGE",
    0x08: "MEMORY PARITY ERROR",
    0x0A: "GATEWAY PATH UNAVAILABLE",
    0x0B: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}


class ReadError(Exception):
    """A read that produced no registers: ``reason`` is a data-quality reason."""

    def __init__(self, reason: str, detail: str, code: int | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.code = code

    @property
    def unreachable(self) -> bool:
        """True when the unit did not answer (it backs off)."""
        return self.reason == "timeout" or (self.reason == "exception" and self.code in GATEWAY_UNREACHABLE)


@dataclass
class PollStats:
    """Counters of one device's poller (all cumulative)."""

    cycles: int = 0  # lane cycles polled (one per lane and slot; one per slot through poll())
    skipped_slots: int = 0  # slots missed by home lanes because a cycle overran its interval
    attempts: int = 0  # requests sent, retries included
    responses: int = 0  # answers received (registers or exception)
    timeouts: int = 0  # requests that got no answer after all retries
    exceptions: int = 0  # exception responses
    parse_errors: int = 0  # answers or fields that could not be decoded
    connects: int = 0  # TCP connections opened
    splits: int = 0  # requests split at their gaps after exception 2


@dataclass
class UnitState:
    """Polling state of one unit id of a device."""

    unit_id: int
    requests: list[ReadRequest]
    failures: int = 0  # consecutive cycles in which the unit did not answer
    next_slot: int = 0  # first slot in which it is polled again


class Connection:
    """One Modbus TCP connection to a device, with per-request timeout and retries.

    pymodbus' own retry and reconnect machinery is switched off (``retries=0``,
    ``reconnect_delay=0``): the timeout is enforced here with :func:`asyncio.timeout` and
    the connection is dropped after a request finally times out, so that a late answer
    can never be taken for the answer to the next request.
    """

    def __init__(self, host: str, port: int, timeout_s: float, retries: int, stats: PollStats, name: str):
        self.host, self.port = host, port
        self.timeout_s, self.retries = timeout_s, retries
        self.stats = stats
        self.name = name
        self._client: AsyncModbusTcpClient | None = None

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self.close()
        client = AsyncModbusTcpClient(self.host, port=self.port, name=self.name, timeout=2 * self.timeout_s + 1,
                                      retries=0, reconnect_delay=0)
        ok = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout_s):
                ok = await client.connect()
        if not ok:
            client.close()
            raise ReadError("timeout", f"cannot connect to {self.host}:{self.port}")
        self.stats.connects += 1
        self._client = client
        return client

    async def read(self, req: ReadRequest) -> list[int]:
        """The registers ``req`` asks for. Raises :class:`ReadError`.

        After ``retries + 1`` failed attempts the reason is ``timeout`` when the last attempt
        got no answer (or no connection), ``parse_error`` when it got one pymodbus could not
        match to the request or decode.
        """
        reason, problem = "timeout", ""
        for _ in range(self.retries + 1):
            try:
                client = await self._connected()
            except ReadError as exc:
                reason, problem = "timeout", exc.detail
                continue
            self.stats.attempts += 1
            try:
                async with asyncio.timeout(self.timeout_s):
                    if req.function == 3:
                        rr = await client.read_holding_registers(req.address, count=req.count, device_id=req.unit_id)
                    else:
                        rr = await client.read_input_registers(req.address, count=req.count, device_id=req.unit_id)
            except TimeoutError:
                reason, problem = "timeout", f"no response within {self.timeout_s:g} s"
                continue
            except ConnectionException as exc:  # the connection went away under the request
                self.close()
                reason, problem = "timeout", f"connection lost: {exc}"
                continue
            except ModbusException as exc:  # an answer that does not fit the request
                self.close()
                reason, problem = "parse_error", f"{exc.__class__.__name__}: {exc}"
                continue
            self.stats.responses += 1
            if rr.isError():
                code = int(getattr(rr, "exception_code", 0))
                name = EXCEPTION_NAMES.get(code, "unknown exception code")
                self.stats.exceptions += 1
                raise ReadError("exception", f"exception {code} ({name}) to {req.label()}", code)
            return list(rr.registers)
        self.close()
        if reason == "timeout":
            self.stats.timeouts += 1
        else:
            self.stats.parse_errors += 1
        raise ReadError(reason, f"{req.label()}: {problem} ({self.retries + 1} attempt(s))")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class Lane:
    """One connection and the units polled over it, in ascending unit order.

    A home lane polls its units while they answer; the probe lane (``probe=True``, holding
    every unit) polls the units that currently do not, so their timeouts never hold up the
    units that do.
    """

    conn: Connection
    units: list[UnitState]
    probe: bool = False
    last_slot: int | None = None  # the last slot this lane polled
    skipped_slots: int = 0  # slots missed because a cycle of this lane overran


class ModbusPoller:
    """Polls one Modbus device on its interval grid and turns the answers into line protocol."""

    def __init__(self, device: ModbusDevice, refs: list[PointRef], processor: PointProcessor,
                 submit: Callable[[list[str]], None], *, host: str, port: int,
                 max_connections: int = MAX_CONNECTIONS, max_gap: int = MAX_GAP):
        self.device = device
        self.processor = processor
        self.submit = submit
        self.host, self.port = host, port
        self.interval_ns = max(1, round(device.poll_interval_s * 1e9))
        self.stats = PollStats()
        bindings = [(r.id, r.point.modbus) for r in refs if r.point.modbus is not None]
        by_unit = requests_by_unit(plan_requests(bindings, max_gap=max_gap))
        self.units = {u: UnitState(u, list(reqs)) for u, reqs in by_unit.items()}
        self.lanes: list[Lane] = []  # home lanes, then the probe lane
        if by_unit:
            for i, unit_ids in enumerate(assign_lanes({u: len(r) for u, r in by_unit.items()}, max_connections)):
                conn = Connection(host, port, device.timeout_s, device.retries, self.stats, f"{device.id}#{i}")
                self.lanes.append(Lane(conn, [self.units[u] for u in unit_ids]))
            conn = Connection(host, port, device.timeout_s, device.retries, self.stats, f"{device.id}#probe")
            self.lanes.append(Lane(conn, [self.units[u] for u in sorted(self.units)], probe=True))

    @classmethod
    def for_device(cls, runtime: CollectorRuntime, device: ModbusDevice, **kwargs: object) -> ModbusPoller:
        """The poller of ``device`` wired to ``runtime`` (host/port default to the settings)."""
        host, port = endpoint(device, runtime.settings)
        return cls(device, runtime.points[device.id], runtime.processors[device.id], runtime.submit,
                   host=host, port=port, **kwargs)  # type: ignore[arg-type]

    @property
    def home_lanes(self) -> list[Lane]:
        """The lanes units are assigned to (without the probe lane)."""
        return [lane for lane in self.lanes if not lane.probe]

    @property
    def requests(self) -> list[ReadRequest]:
        """The current read plan (after any gap splits), in unit order."""
        return [r for u in sorted(self.units) for r in self.units[u].requests]

    # ------------------------------------------------------------------ one cycle
    async def poll(self, slot: int) -> list[str]:
        """Poll every unit due in ``slot`` over all lanes in parallel; lines are stamped with the slot start."""
        self.stats.cycles += 1
        results = await asyncio.gather(*(self._poll_lane(lane, slot) for lane in self.lanes))
        return [ln for lines in results for ln in lines]

    async def _poll_lane(self, lane: Lane, slot: int) -> list[str]:
        ts_ns = slot * self.interval_ns
        out: list[str] = []
        for unit in lane.units:
            if slot >= unit.next_slot and (unit.failures > 0) == lane.probe:
                out += await self._poll_unit(lane.conn, unit, slot, ts_ns)
        return out

    async def _poll_unit(self, conn: Connection, unit: UnitState, slot: int, ts_ns: int) -> list[str]:
        out: list[str] = []
        pending = list(unit.requests)
        while pending:
            req = pending.pop(0)
            try:
                registers = await conn.read(req)
            except ReadError as err:
                if err.code == 2 and req.has_gaps:
                    segments = req.segments()
                    i = unit.requests.index(req)
                    unit.requests[i:i + 1] = segments
                    pending[0:0] = segments
                    self.stats.splits += 1
                    log.info("device %s: %s answered exception 2 across unused registers; reading it as %d "
                             "gap-free requests from now on", self.device.id, req.label(), len(segments))
                    continue
                if err.unreachable:
                    affected = req.point_ids + [pid for r in pending for pid in r.point_ids]
                    out += self.processor.device_event(err.reason, ts_ns, err.detail, affected)
                    self._back_off(unit, slot, err.detail)
                    return out
                out += self.processor.device_event(err.reason, ts_ns, err.detail, req.point_ids)
                continue
            readings = []
            for field, value in req.decode(registers):
                if isinstance(value, DecodeError):
                    self.stats.parse_errors += 1
                    out += self.processor.bad(field.point_id, "parse_error", ts_ns, f"{req.label()}: {value}")
                else:
                    readings.append((field.point_id, value, ts_ns))
            out += self.processor.good_many(readings)
        if unit.failures:
            log.info("device %s: unit %d answers again after %d failed poll(s)", self.device.id, unit.unit_id,
                     unit.failures)
            unit.failures = 0
        unit.next_slot = slot + 1  # polled in this slot: not again by the other lane
        return out

    def _back_off(self, unit: UnitState, slot: int, detail: str) -> None:
        unit.failures += 1
        interval_s = self.interval_ns / 1e9
        delay_s = min(self.device.backoff_max_s, interval_s * 2 ** min(unit.failures - 1, 30))
        skip = max(1, math.ceil(delay_s / interval_s - 1e-9))
        unit.next_slot = slot + skip
        if unit.failures == 1 or skip > 1:
            log.warning("device %s: unit %d unreachable (%s), %d failed poll(s), next try in %.3g s",
                        self.device.id, unit.unit_id, detail, unit.failures, skip * interval_s)

    # ------------------------------------------------------------------ schedule
    def next_slot(self, lane: Lane, now_ns: int) -> int:
        """The slot ``lane`` polls next: the first boundary after ``now_ns``, never one it polled before."""
        slot = now_ns // self.interval_ns + 1
        if lane.last_slot is not None:
            if slot > lane.last_slot + 1:
                missed = slot - lane.last_slot - 1
                lane.skipped_slots += missed
                if not lane.probe:
                    self.stats.skipped_slots += missed  # the probe lane overruns by design while units time out
                    log.warning("device %s: a poll cycle of %s overran its %.3g s interval, %d slot(s) skipped",
                                self.device.id, lane.conn.name, self.interval_ns / 1e9, missed)
            slot = max(slot, lane.last_slot + 1)
        return slot

    async def run(self, stop: asyncio.Event) -> None:
        """Poll slot after slot until ``stop`` is set.

        Every lane keeps its own schedule, so a lane held up by a unit that times out never
        makes the other lanes miss a slot; each lane submits its lines once per cycle. A unit
        that stops answering moves to the probe lane after its first failed poll and back
        to its home lane with its first answer.
        """
        try:
            await asyncio.gather(*(self._run_lane(lane, stop) for lane in self.lanes))
        finally:
            self.close()

    async def _run_lane(self, lane: Lane, stop: asyncio.Event) -> None:
        while not stop.is_set():
            slot = self.next_slot(lane, time.time_ns())
            wait_s = (slot * self.interval_ns - time.time_ns()) / 1e9
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait_s)
                if stop.is_set():
                    return
            lane.last_slot = slot
            cycle = asyncio.ensure_future(self._poll_lane(lane, slot))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({cycle, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not cycle.done():
                cycle.cancel()
                await asyncio.gather(cycle, return_exceptions=True)
                return
            self.stats.cycles += 1
            self.submit(cycle.result())

    def close(self) -> None:
        for lane in self.lanes:
            lane.conn.close()


def endpoint(device: ModbusDevice, settings: Settings) -> tuple[str, int]:
    """Host and port of ``device``: its own, else ``settings.modbus_host``/``modbus_port``."""
    return device.host or settings.modbus_host, device.port or settings.modbus_port


async def run_modbus(runtime: CollectorRuntime, stop: asyncio.Event) -> None:
    """Poll every Modbus device of ``runtime`` until ``stop`` is set.

    The caller starts and stops ``runtime`` (see :func:`main`); lines go to ``runtime.submit``.
    pymodbus' own logger is raised to CRITICAL unless its level was set explicitly: it logs
    every late answer the collector deliberately ignores as an ERROR with a hex dump of the
    last 20 frames, while the collector reports the same events as ``data_quality`` records.
    """
    pymodbus_log = logging.getLogger("pymodbus.logging")
    if pymodbus_log.level == logging.NOTSET:
        pymodbus_log.setLevel(logging.CRITICAL)
    pollers = []
    for device in runtime.devices:
        if not isinstance(device, ModbusDevice):
            continue
        if not runtime.points.get(device.id):
            log.info("Modbus device %s has no points; not polled", device.id)
            continue
        poller = ModbusPoller.for_device(runtime, device)
        log.info("Modbus device %s at %s:%d: %d points in %d requests over %d connection(s) (+1 for units "
                 "that do not answer), every %g s",
                 device.id, poller.host, poller.port, len(runtime.points[device.id]), len(poller.requests),
                 len(poller.home_lanes), device.poll_interval_s)
        pollers.append(poller)
    if not pollers:
        log.warning("no Modbus device with points in park %s", runtime.park.park.id)
        await stop.wait()
        return
    await asyncio.gather(*(p.run(stop) for p in pollers))


def main(runtime: CollectorRuntime) -> None:
    """Run the Modbus collector in this thread until SIGINT/SIGTERM; starts and stops ``runtime``."""

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        await run_modbus(runtime, stop)

    runtime.start()
    try:
        asyncio.run(_run())
    finally:
        runtime.stop()
