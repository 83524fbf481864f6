"""Deliberate device misbehaviour: random at a low rate, or forced by tests.

A fault has a kind, a target (a point, a meter or a device id), the points it affects and
a window of ticks ``[start_tick, until_tick)``. The protocol servers ask :class:`FaultBook`
whether a fault is active for a point at the current tick; :class:`FaultBook` knows nothing
about sockets. Kinds and how each server shows them (docs/simulator.md has the table):

=========================  ========  =====================================================
kind                       protocol  effect
=========================  ========  =====================================================
``opcua_bad_sensor``       OPC UA    value written with status BadSensorFailure (value null)
``opcua_comm_error``       OPC UA    value written with status BadCommunicationError
``modbus_illegal_address`` Modbus    reads touching the point answer exception 02
``modbus_device_failure``  Modbus    reads touching the point answer exception 04
``modbus_timeout``         Modbus    reads touching the point answer after 1.5 x timeout_s + 0.25 s
``mqtt_truncated``         MQTT      the message is cut in the middle (invalid JSON)
``mqtt_not_json``          MQTT      the message is plain text, not JSON
``mqtt_missing_field``     MQTT      the point's field is left out of the message
``counter_reset``          any       the counters read 0 and count up again (instantaneous)
``silent``                 any       no writes / no publishes / no Modbus answer at all
=========================  ========  =====================================================

A ``silent`` fault on a point silences its whole meter; on a Modbus meter it silences the
meter's unit id (every meter behind that slave address), as a dead RS-485 slave would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lingtan.park.carriers import Kind
from lingtan.park.index import PointRef
from lingtan.park.model import Protocol
from lingtan_collectors.common.simulation import FaultKind
from lingtan_tools.simulate.models import stable_seed

PROTOCOL_KINDS: dict[Protocol, tuple[FaultKind, ...]] = {
    Protocol.opcua: (FaultKind.opcua_bad_sensor, FaultKind.opcua_comm_error),
    Protocol.modbus: (FaultKind.modbus_illegal_address, FaultKind.modbus_device_failure, FaultKind.modbus_timeout),
    Protocol.mqtt: (FaultKind.mqtt_truncated, FaultKind.mqtt_not_json, FaultKind.mqtt_missing_field),
}
#: relative weight of each kind when a random fault hits a point (protocol kinds weigh 1)
RANDOM_WEIGHTS = {FaultKind.silent: 0.3, FaultKind.counter_reset: 0.01}
#: random fault duration [ticks], uniform in [lo, hi]
RANDOM_DURATION_TICKS = (3, 30)


@dataclass(frozen=True)
class Fault:
    """One injected fault."""

    kind: FaultKind
    target: str
    target_type: str  # "point", "meter" or "device"
    points: tuple[str, ...]
    start_tick: int
    until_tick: int  # exclusive; start_tick for instantaneous faults
    injected: bool  # True: forced with inject(); False: drawn at random


class FaultBook:
    """Active faults of a park, random draws and forced injections.

    Parameters
    ----------
    refs : list of PointRef
        All points of the park.
    seed : int
        Seed of the random draws (a stream independent of the value noise).
    rate : float
        Probability per point per tick that a random fault starts; 0 disables.
    tick_s : float
        Wall seconds per tick, to turn a duration in seconds into ticks.
    """

    def __init__(self, refs: list[PointRef], *, seed: int = 1, rate: float = 0.0002, tick_s: float = 1.0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {rate}")
        self.refs = refs
        self.rate = rate
        self.tick_s = tick_s
        self.by_point = {r.id: r for r in refs}
        self.meters: dict[str, list[str]] = {}
        self.devices: dict[str, list[str]] = {}
        for r in refs:
            self.meters.setdefault(r.meter.id, []).append(r.id)
            self.devices.setdefault(r.device_id, []).append(r.id)
        self._rng = np.random.default_rng(stable_seed(seed, "faults"))
        self._until: dict[FaultKind, dict[str, int]] = {k: {} for k in FaultKind}
        self.history: list[Fault] = []
        self.listeners: list[Callable[[Fault], None]] = []

    # ------------------------------------------------------------------ queries

    def active(self, kind: FaultKind, point_id: str, tick: int) -> bool:
        """Whether ``kind`` affects ``point_id`` at ``tick``."""
        return self._until[kind].get(point_id, -1) > tick

    def first_active(self, kinds: tuple[FaultKind, ...], point_id: str, tick: int) -> FaultKind | None:
        """The first of ``kinds`` active for the point, or None."""
        for kind in kinds:
            if self._until[kind].get(point_id, -1) > tick:
                return kind
        return None

    # ------------------------------------------------------------------ injection

    def resolve(self, kind: FaultKind, target: str) -> tuple[str, tuple[str, ...]]:
        """Target type and the points a fault of ``kind`` on ``target`` affects."""
        if target in self.by_point:
            target_type, points = "point", [target]
        elif target in self.meters:
            target_type, points = "meter", list(self.meters[target])
        elif target in self.devices:
            target_type, points = "device", list(self.devices[target])
        else:
            raise KeyError(f"unknown fault target {target!r}: not a point, meter or device id")
        if kind is FaultKind.silent:
            points = self._silence_scope(points)
        elif kind is FaultKind.counter_reset:
            points = [p for p in points if self.by_point[p].point.kind is Kind.counter]
        else:
            protocol = next(proto for proto, kinds in PROTOCOL_KINDS.items() if kind in kinds)
            points = [p for p in points if self.by_point[p].protocol is protocol]
        if not points:
            raise ValueError(f"fault {kind.value} does not apply to any point of {target!r}")
        return target_type, tuple(points)

    def _silence_scope(self, points: list[str]) -> list[str]:
        """Whole meters; for Modbus meters every point behind the same unit id."""
        out: dict[str, None] = {}
        for pid in points:
            ref = self.by_point[pid]
            for mp in self.meters[ref.meter.id]:
                out[mp] = None
                mref = self.by_point[mp]
                if mref.point.modbus is not None:
                    unit = (mref.device_id, mref.point.modbus.unit_id)
                    for other in self.devices[mref.device_id]:
                        oref = self.by_point[other]
                        if oref.point.modbus is not None and (oref.device_id, oref.point.modbus.unit_id) == unit:
                            out[other] = None
        return list(out)

    def ticks_for(self, duration_s: float) -> int:
        return max(1, math.ceil(duration_s / self.tick_s - 1e-9))

    def inject(self, kind: FaultKind | str, target: str, tick: int, *, duration_s: float = 10.0, injected: bool = True) -> Fault:
        """Start a fault now (at ``tick``); it lasts ``duration_s`` wall seconds, rounded up to ticks.

        The current tick's values are already out, so the fault covers the next
        ``ceil(duration_s / tick_s)`` ticks, and answers to Modbus requests from now on.
        """
        kind = FaultKind(kind)
        until = tick if kind is FaultKind.counter_reset else tick + 1 + self.ticks_for(duration_s)
        return self._add(kind, target, tick, until, injected)

    def _add(self, kind: FaultKind, target: str, start: int, until: int, injected: bool) -> Fault:
        target_type, points = self.resolve(kind, target)
        fault = Fault(kind, target, target_type, points, start, until, injected)
        if kind is not FaultKind.counter_reset:
            table = self._until[kind]
            for pid in points:
                table[pid] = max(table.get(pid, -1), until)
        self.history.append(fault)
        for listener in self.listeners:
            listener(fault)
        return fault

    def clear(self, kind: FaultKind | str | None = None) -> None:
        """End active faults (of one kind, or all) before their time."""
        for k in [FaultKind(kind)] if kind is not None else list(FaultKind):
            self._until[k].clear()

    def random_step(self, tick: int) -> list[Fault]:
        """Draw this tick's random faults; the draws depend only on the seed and the tick sequence."""
        if self.rate <= 0.0:
            return []
        hits = np.flatnonzero(self._rng.random(len(self.refs)) < self.rate)
        out = []
        for i in hits:
            ref = self.refs[int(i)]
            kinds = list(PROTOCOL_KINDS[ref.protocol]) + [FaultKind.silent]
            if ref.point.kind is Kind.counter:
                kinds.append(FaultKind.counter_reset)
            weights = np.array([RANDOM_WEIGHTS.get(k, 1.0) for k in kinds])
            kind = kinds[int(self._rng.choice(len(kinds), p=weights / weights.sum()))]
            ticks = int(self._rng.integers(RANDOM_DURATION_TICKS[0], RANDOM_DURATION_TICKS[1] + 1))
            target = ref.meter.id if kind in (FaultKind.silent, FaultKind.counter_reset) else ref.id
            until = tick if kind is FaultKind.counter_reset else tick + ticks  # covers this tick's values
            out.append(self._add(kind, target, tick, until, injected=False))
        return out
