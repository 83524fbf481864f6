"""Run the demo-park simulators: one asyncio process with OPC UA, Modbus and MQTT.

``lingtan simulate`` calls :func:`run`. Tests start a :class:`Simulator` in-process
(``async with Simulator(...) as sim``) or, from synchronous tests, in a background thread
with :func:`start_in_thread`. Both let a test force any fault with ``inject(kind, target,
duration_s=...)``; see docs/simulator.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import math
import os
import signal
import threading
from collections import defaultdict
from collections.abc import Callable, Set
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from lingtan.park.model import PROTOCOLS, Park
from lingtan.settings import Settings
from lingtan_collectors.common.simulation import ParkSimContext, ParkSimServer
from lingtan_collectors.plugins import plugin
from lingtan_tools.simulate.emitlog import EmissionLog
from lingtan_tools.simulate.engine import Engine
from lingtan_tools.simulate.faults import Fault, FaultBook, FaultKind
from lingtan_tools.simulate.weather_feed import WeatherFeed

log = logging.getLogger(__name__)

ALL_PROTOCOLS: frozenset[str] = frozenset(spec.name for spec in PROTOCOLS)
#: how often a running simulator writes its counter state [wall s]; a hard kill loses at most this
#: much counting, which the calc-service sees as a small backward step (docs/simulator.md)
SAVE_EVERY_S = 5.0
T = TypeVar("T")


class Simulator:
    """The park's device simulators, stepped by one simulated clock.

    Parameters
    ----------
    park : Park
        The park model (meters need ``simulation`` blocks to show anything but 0).
    settings : Settings
        Endpoints: ``opcua_endpoint``, ``modbus_host``/``modbus_port``, ``mqtt_host``/``mqtt_port``
        (a device's own ``endpoint``/``host``/``port`` overrides them).
    seed : int
        Seed of every random process: same seed, start, speed and tick => same values.
    speed : float
        Simulated seconds per wall second.
    start : datetime, optional
        Simulated time of the first tick (naive = park local time); default now.
    fault_rate : float
        Probability per point per tick of a random fault; 0 disables random faults.
    protocols : set of str
        Which protocols to serve (default all: ``opcua``, ``modbus``, ``mqtt``).
    tick_s : float
        Wall seconds between ticks.
    emit_log : Path, optional
        JSON-lines emission log (see :mod:`lingtan_tools.simulate.emitlog`).
    history_count : int
        Values kept per OPC UA variable for HistoryRead.
    mqtt_connect_timeout_s : float
        How long :meth:`start` waits for the MQTT broker before going on without it.
    counter_state : Path, optional
        JSON file the counter readings are kept in across restarts, like a real meter's
        register: read at start (when it exists), written every :data:`SAVE_EVERY_S` seconds
        and at stop. Without it every start begins from the seeded readings.
    """

    def __init__(
        self,
        park: Park,
        settings: Settings,
        *,
        seed: int = 1,
        speed: float = 1.0,
        start: dt.datetime | None = None,
        fault_rate: float = 0.0002,
        protocols: Set[str] = ALL_PROTOCOLS,
        tick_s: float = 1.0,
        emit_log: Path | None = None,
        history_count: int = 3600,
        mqtt_connect_timeout_s: float = 3.0,
        counter_state: Path | None = None,
    ) -> None:
        unknown = set(protocols) - ALL_PROTOCOLS
        if unknown:
            raise ValueError(f"unknown protocol(s) {sorted(unknown)}; use {sorted(ALL_PROTOCOLS)}")
        if speed <= 0 or tick_s <= 0:
            raise ValueError(f"speed and tick_s must be > 0, got {speed}, {tick_s}")
        self.park = park
        self.settings = settings
        self.speed = speed
        self.tick_s = tick_s
        self.mqtt_connect_timeout_s = mqtt_connect_timeout_s
        if start is None:
            start = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.counter_state = counter_state
        self.engine = Engine(park, seed=seed, start=start, step_s=tick_s * speed,
                             resume=load_counter_state(counter_state, park) if counter_state else None)
        self.faults = FaultBook(self.engine.refs, seed=seed, rate=fault_rate, tick_s=tick_s)
        self.faults.listeners.append(self._on_fault)
        self.emit = EmissionLog(emit_log)
        self.tick = -1  # last published tick
        #: the simulated servers, by protocol rank (opcua, modbus, mqtt) and then park file order
        self.servers: list[ParkSimServer] = self._build_servers(protocols, history_count)
        self._task: asyncio.Task[None] | None = None
        self._ticked: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wall0 = 0.0
        self.lag_ticks = 0  # ticks skipped (computed but not published) because the loop fell behind
        self.weather = WeatherFeed(park, settings, seed=seed)
        self._weather_task: asyncio.Task[int] | None = None

    def _build_servers(self, protocols: Set[str], history_count: int) -> list[ParkSimServer]:
        """One server per protocol and endpoint: simulated devices that share a socket share a server."""
        used = {r.device_id for r in self.engine.refs}
        servers: list[ParkSimServer] = []
        for spec in PROTOCOLS:
            if spec.name not in protocols:
                continue
            collector = plugin(spec.name)
            groups: dict[Any, list[Any]] = defaultdict(list)
            for d in self.park.devices:
                if d.id in used and d.protocol.value == spec.name:
                    groups[collector.park_server_key(d, self.settings)].append(d)
            for index, (where, devices) in enumerate(groups.items()):
                context = ParkSimContext(
                    park_id=self.park.park.id, settings=self.settings, refs=self.engine.refs, faults=self.faults,
                    emit=self.emit, current_tick=lambda: max(self.tick, 0), history_count=history_count,
                    connect_timeout_s=self.mqtt_connect_timeout_s, index=index)
                servers.append(collector.park_server(where, devices, context))
        return servers

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every server, publish tick 0 and begin ticking."""
        self._loop = asyncio.get_running_loop()
        self._ticked = asyncio.Condition()
        self.engine.advance_to(0)
        self.faults.random_step(0)
        try:
            for server in self.servers:
                await server.start(self.engine)
        except BaseException:
            await self.stop()
            raise
        self._wall0 = self._loop.time()
        await self._publish(0)
        self._task = asyncio.create_task(self._run(), name="lingtan-simulator-ticks")
        log.info("simulating park %s from %s at %gx, tick %gs: %s",
                 self.park.park.id, self.engine.time_at(0).isoformat(), self.speed, self.tick_s, self.describe())

    def describe(self) -> str:
        return ", ".join(server.describe() for server in self.servers) or "no servers"

    async def stop(self) -> None:
        """Stop ticking and close every server (idempotent); the counters are saved."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._weather_task is not None:  # a post in flight finishes (at most its HTTP timeout)
            with contextlib.suppress(Exception):
                await self._weather_task
            self._weather_task = None
        self.save_counters()
        for server in reversed(self.servers):
            await server.stop()
        self.emit.close()

    def save_counters(self) -> None:
        """Write the counter readings to ``counter_state`` (atomically; no-op without it)."""
        if self.counter_state is not None:
            save_counter_state(self.counter_state, self.park, self.engine.counter_state(),
                               self.engine.time_at(max(self.engine.tick, 0)))

    async def _run(self) -> None:
        assert self._loop is not None
        k = 1
        saved_at = self._loop.time()
        while True:
            if self._loop.time() - saved_at >= SAVE_EVERY_S:
                saved_at = self._loop.time()
                try:
                    self.save_counters()
                except OSError:
                    log.exception("saving the counter state to %s failed", self.counter_state)
            delay = self._wall0 + k * self.tick_s - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            target = max(k, math.floor((self._loop.time() - self._wall0) / self.tick_s))
            self.lag_ticks += target - k
            for j in range(self.engine.tick + 1, target + 1):
                self.engine.advance_to(j)
                self.faults.random_step(j)
            try:
                await self._publish(target)
            except Exception:
                log.exception("publishing tick %d failed", target)
            self._feed_weather()
            k = target + 1

    def _feed_weather(self) -> None:
        """Start posting the hours the weather feed owes, in a worker thread, one post at a time."""
        if self._weather_task is not None and not self._weather_task.done():
            return
        if self.weather.due(self.engine.time_at(self.tick)):
            self._weather_task = asyncio.create_task(asyncio.to_thread(self.weather.step, self.engine.time_at(self.tick)),
                                                     name="lingtan-weather-feed")

    async def _publish(self, k: int) -> None:
        self.tick = k
        for server in self.servers:
            await server.publish(self.engine, self.faults, k, self.emit)
        assert self._ticked is not None
        async with self._ticked:
            self._ticked.notify_all()

    # ------------------------------------------------------------------ clock and control

    def sim_time(self) -> dt.datetime:
        """Simulated time now: ``start + speed x wall time elapsed`` (UTC)."""
        elapsed = (self._loop.time() - self._wall0) if self._loop is not None and self._wall0 else 0.0
        return self.engine.time_at(0) + dt.timedelta(seconds=self.speed * elapsed)

    async def wait_ticks(self, n: int = 1, timeout: float = 30.0) -> int:
        """Wait until ``n`` more ticks have been published; returns the tick reached."""
        assert self._ticked is not None, "simulator not started"
        goal = self.tick + n
        async with self._ticked:
            await asyncio.wait_for(self._ticked.wait_for(lambda: self.tick >= goal), timeout)
        return self.tick

    def inject(self, kind: FaultKind | str, target: str, *, duration_s: float = 10.0) -> Fault:
        """Force a fault on a point, meter or device id now (call from the simulator's loop thread).

        ``duration_s`` is in wall seconds, rounded up to whole ticks; ``counter_reset``
        is instantaneous. Raises KeyError for an unknown target and ValueError when the
        kind does not apply to it (e.g. an MQTT fault on an OPC UA meter).
        """
        return self.faults.inject(kind, target, max(self.tick, 0), duration_s=duration_s)

    def clear_faults(self, kind: FaultKind | str | None = None) -> None:
        """End active faults (of one kind, or all) now."""
        self.faults.clear(kind)

    def _on_fault(self, fault: Fault) -> None:
        if fault.kind is FaultKind.counter_reset:
            self.engine.reset_counters(fault.points)
        self.emit.fault(fault, self.engine.ts_ms(fault.start_tick), self.engine.ts_ms(fault.until_tick))
        log.debug("fault %s on %s %s until tick %d", fault.kind.value, fault.target_type, fault.target, fault.until_tick)


# --------------------------------------------------------------------------- counter state


def load_counter_state(path: Path, park: Park) -> dict[str, float]:
    """Saved counter readings of ``park`` (empty when the file is missing, unreadable or of another park)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("park") != park.park.id or not isinstance(doc.get("counters"), dict):
        log.warning("counter state %s is not of park %s; counters start from their seeded readings", path,
                    park.park.id)
        return {}
    return {k: float(v) for k, v in doc["counters"].items() if isinstance(v, int | float) and math.isfinite(v)}


def save_counter_state(path: Path, park: Park, counters: dict[str, float], sim_time: dt.datetime) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    doc = {"park": park.park.id, "sim_time": sim_time.isoformat(), "counters": counters}
    tmp.write_text(json.dumps(doc, indent=0, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- blocking entry point


def run(
    park: Park,
    settings: Settings,
    *,
    seed: int = 1,
    speed: float = 1.0,
    start: dt.datetime | None = None,
    fault_rate: float = 0.0002,
    protocols: Set[str] = ALL_PROTOCOLS,
    tick_s: float = 1.0,
    emit_log: Path | None = None,
    counter_state: Path | None = None,
) -> None:
    """Run the simulators until SIGINT or SIGTERM (blocking); see :class:`Simulator`."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sim = Simulator(park, settings, seed=seed, speed=speed, start=start, fault_rate=fault_rate,
                        protocols=protocols, tick_s=tick_s, emit_log=emit_log, counter_state=counter_state)
        async with sim:
            await stop.wait()
            log.info("stopping simulators at tick %d", sim.tick)

    asyncio.run(main())


# --------------------------------------------------------------------------- background thread


class SimulatorThread:
    """A :class:`Simulator` on its own event loop in a daemon thread, for synchronous tests."""

    def __init__(self, park: Park, settings: Settings, **kwargs: Any) -> None:
        self._args = (park, settings)
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.simulator: Simulator | None = None
        self._thread = threading.Thread(target=self._main, name="lingtan-simulator", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._body())
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _body(self) -> None:
        try:
            self._stop = asyncio.Event()
            self.simulator = Simulator(*self._args, **self._kwargs)
            await self.simulator.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.simulator.stop()

    def start(self, timeout: float = 60.0) -> SimulatorThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"simulator did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(5)
            raise self._error
        return self

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the simulator's loop thread and return its result."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

        self._loop.call_soon_threadsafe(job)
        return fut.result(timeout)

    @property
    def sim(self) -> Simulator:
        assert self.simulator is not None
        return self.simulator

    @property
    def tick(self) -> int:
        return self.sim.tick

    def inject(self, kind: FaultKind | str, target: str, *, duration_s: float = 10.0) -> Fault:
        """Thread-safe :meth:`Simulator.inject`."""
        return self.call(lambda: self.sim.inject(kind, target, duration_s=duration_s))

    def clear_faults(self, kind: FaultKind | str | None = None) -> None:
        self.call(lambda: self.sim.clear_faults(kind))

    def wait_ticks(self, n: int = 1, timeout: float = 30.0) -> int:
        """Block until ``n`` more ticks have been published."""
        fut = asyncio.run_coroutine_threadsafe(self.sim.wait_ticks(n, timeout), self._loop)
        return fut.result(timeout + 1.0)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the simulator and join the thread (idempotent)."""
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def __enter__(self) -> SimulatorThread:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_in_thread(park: Park, settings: Settings, **kwargs: Any) -> SimulatorThread:
    """Start a :class:`Simulator` in a background thread; keyword arguments as for Simulator.

    Returns once every server listens. ``stop()`` ends it; ``inject(kind, target,
    duration_s=...)`` forces a fault from any thread.
    """
    return SimulatorThread(park, settings, **kwargs).start()
