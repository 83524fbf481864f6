"""Normalisation and data quality, shared by every collector.

A reading enters as ``(point id, raw value, timestamp)``. :class:`PointProcessor` scales it
to the canonical unit (``(raw * scale + offset) * unit factor``), checks it, and returns
line protocol: the raw series line for a good reading, a ``data_quality`` line for every
problem. The reasons (docs/schema.md):

``bad_status``      the device flagged the value as bad (OPC UA Bad status code)
``stale``           no new value for longer than the device's ``stale_after_s``
``out_of_range``    outside the point's ``valid_min``/``valid_max``; not written as raw
``counter_rollover`` a counter wrapped at its modulus; written (it is a true reading)
``counter_reset``   a counter restarted from zero (new value near zero); written, flagged
``counter_backwards`` a counter went back by other than a reset (a replayed or re-synced value);
                    written, flagged (the drop rules are :mod:`lingtan.park.counters`)
``parse_error``     a payload that cannot be parsed (MQTT)
``timeout`` / ``exception``  a device that did not answer / answered with an error (Modbus)

Each event is counted, recorded and logged at most once per device and reason per
``log_interval_s``. Nothing here raises on bad data.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import Counter

from lingtan.park import counters
from lingtan.park.carriers import Kind, canonical_unit
from lingtan.park.index import PointRef
from lingtan.series import DATA_QUALITY, PointEncoder, line

log = logging.getLogger(__name__)

REASONS = (
    "bad_status", "stale", "out_of_range", "counter_rollover", "counter_reset", "counter_backwards",
    "parse_error", "timeout", "exception", "rejected",
)


class _PointState:
    """Per-point constants (pre-computed once) and the last reading, for the hot path."""

    __slots__ = ("prefix", "scale", "offset", "factor", "lo", "hi", "counter", "modulus", "canonical_modulus",
                 "capacity", "step", "raw", "ts_ns", "seen", "stale_reported")

    def __init__(self, ref: PointRef, prefix: str, now: float):
        p = ref.point
        self.prefix = prefix
        self.scale, self.offset, self.factor = p.scale, p.offset, ref.to_canonical
        # finite defaults, so that an infinite reading fails the range test and is caught there
        self.lo = -sys.float_info.max if p.valid_min is None else p.valid_min
        self.hi = sys.float_info.max if p.valid_max is None else p.valid_max
        self.counter = p.kind is Kind.counter
        self.modulus = counters.raw_modulus(p)  # raw units, for the detail text
        self.canonical_modulus = counters.canonical_modulus(ref)
        self.capacity = counters.rated_capacity(ref.meter)  # canonical rate unit
        self.step = counters.register_step(ref)
        self.raw: float | None = None
        self.ts_ns = 0
        self.seen = now
        self.stale_reported = 0.0


class PointProcessor:
    """Turns raw readings of one device's points into line protocol, with quality checks."""

    def __init__(self, refs: list[PointRef], device_id: str, stale_after_s: float, log_interval_s: float = 60.0):
        self.refs = {r.id: r for r in refs}
        self.device_id = device_id
        self.stale_after_s = stale_after_s
        self.log_interval_s = log_interval_s
        self.encoder = PointEncoder(refs)
        self.counts: Counter[str] = Counter()
        self.points_in = 0
        now = time.monotonic()
        self._state = {
            r.id: _PointState(r, self.encoder.prefix(r.id), now) for r in refs
        }
        self._logged: dict[str, float] = {}

    # ------------------------------------------------------------------ events
    def event(self, reason: str, point_id: str | None, ts_ns: int, detail: str, value: float | None = None) -> str:
        """Count and log a data-quality event; return its ``data_quality`` line."""
        self.counts[reason] += 1
        now = time.monotonic()
        if now - self._logged.get(reason, -1e18) >= self.log_interval_s:
            self._logged[reason] = now
            log.warning("device %s: %s at %s: %s (further %s events for this device are counted, "
                        "logged again in %.0fs)", self.device_id, reason, point_id or "-", detail, reason,
                        self.log_interval_s)
        ref = self.refs.get(point_id) if point_id else None
        tags = {"device": self.device_id, "reason": reason}
        if ref is not None:
            tags.update(park=ref.park_id, enterprise=ref.enterprise.id, meter=ref.meter.id, point=ref.id,
                        protocol=ref.protocol.value)
        elif self.refs:
            any_ref = next(iter(self.refs.values()))
            tags.update(park=any_ref.park_id, protocol=any_ref.protocol.value)
        fields: dict[str, float | int | str] = {"count": 1, "detail": detail[:500]}
        if value is not None and math.isfinite(value):
            fields["value"] = float(value)
        return line(DATA_QUALITY, tags, fields, ts_ns)

    # ------------------------------------------------------------------ readings
    def good(self, point_id: str, raw: float, ts_ns: int) -> list[str]:
        """Lines for a reading the device reported as good."""
        st = self._state[point_id]
        self.points_in += 1
        st.seen = time.monotonic()
        st.stale_reported = 0.0
        if raw.__class__ is not float:
            try:
                raw = float(raw)
            except (TypeError, ValueError):
                return [self.event("parse_error", point_id, ts_ns, f"value {raw!r} is not a number")]
        value = (raw * st.scale + st.offset) * st.factor
        if not st.lo <= value <= st.hi:  # also catches NaN
            if not math.isfinite(raw):
                return [self.event("parse_error", point_id, ts_ns, f"value {raw!r} is not finite")]
            unit = canonical_unit(self.refs[point_id].carrier, self.refs[point_id].point.kind)
            return [self.event("out_of_range", point_id, ts_ns,
                               f"{value:g} {unit} outside [{st.lo:g}, {st.hi:g}]", value)]
        if not st.counter:
            return [f"{st.prefix}{value!r} {ts_ns}"]
        if not math.isfinite(raw):
            return [self.event("parse_error", point_id, ts_ns, f"value {raw!r} is not finite")]
        out: list[str] = []
        last = st.raw
        if ts_ns >= st.ts_ns:
            if last is not None and raw < last:
                out.append(self._drop(point_id, st, last, raw, ts_ns, value))
            st.raw, st.ts_ns = raw, ts_ns
        out.append(f"{st.prefix}{value!r} {ts_ns}")
        return out

    def _drop(self, point_id: str, st: _PointState, last: float, raw: float, ts_ns: int, value: float) -> str:
        """The data-quality line of a counter drop, classified by the one set of drop rules."""
        previous = (last * st.scale + st.offset) * st.factor  # canonical, as value
        floor = float(counters.reset_floor(st.capacity, (ts_ns - st.ts_ns) / 3.6e12, st.step))
        kind = counters.classify_step(previous, value, st.canonical_modulus, floor)
        detail = f"raw {last:.15g} -> {raw:.15g}"
        if kind == counters.ROLLOVER:
            detail += f" (modulus {st.modulus:.15g})"
        return self.event(f"counter_{kind}", point_id, ts_ns, detail, value)

    def good_many(self, readings: list[tuple[str, float, int]]) -> list[str]:
        """:meth:`good` for many ``(point id, raw, ts_ns)`` readings; one list of lines.

        The common case (a finite float in range; for a counter, in order and not going
        backwards) is handled inline; everything else goes through :meth:`good`, so the
        result is exactly that of calling :meth:`good` reading by reading.
        """
        out: list[str] = []
        append = out.append
        state = self._state
        good = self.good
        now = time.monotonic()
        fast = 0
        last_ts, ts_text = None, ""  # readings of one message or request share a timestamp
        for point_id, raw, ts_ns in readings:
            st = state[point_id]
            if raw.__class__ is int and -2**53 <= raw <= 2**53:  # register values: exact as float
                raw = float(raw)
            if raw.__class__ is float:
                value = (raw * st.scale + st.offset) * st.factor
                if st.lo <= value <= st.hi:
                    if st.counter:
                        last = st.raw
                        # in order and not going backwards; raw - raw == 0 rules out inf and NaN without a call
                        plain = ts_ns >= st.ts_ns and (last is None or raw >= last) and raw - raw == 0.0
                        if plain:
                            st.raw, st.ts_ns = raw, ts_ns
                    else:
                        plain = True
                    if plain:
                        st.seen = now
                        st.stale_reported = 0.0
                        fast += 1
                        if ts_ns != last_ts:
                            last_ts, ts_text = ts_ns, f" {ts_ns}"
                        append(f"{st.prefix}{value!r}{ts_text}")
                        continue
            out += good(point_id, raw, ts_ns)
        self.points_in += fast
        return out

    def bad(self, point_id: str, reason: str, ts_ns: int, detail: str, raw: float | None = None) -> list[str]:
        """Lines for a reading the device flagged or that could not be decoded."""
        self.points_in += 1
        value = None
        if raw is not None:
            try:
                value = self.refs[point_id].engineering_value(float(raw))
            except (TypeError, ValueError):
                value = None
        return [self.event(reason, point_id, ts_ns, detail, value)]

    def device_event(self, reason: str, ts_ns: int, detail: str, point_ids: list[str] | None = None) -> list[str]:
        """Lines for a device-level problem (timeout, exception), one per affected point."""
        if not point_ids:
            return [self.event(reason, None, ts_ns, detail)]
        return [self.event(reason, pid, ts_ns, detail) for pid in point_ids]

    def stale(self, now_ns: int | None = None) -> list[str]:
        """``stale`` events for points silent longer than ``stale_after_s`` (once per interval)."""
        now = time.monotonic()
        now_ns = now_ns if now_ns is not None else time.time_ns()
        out = []
        for pid, st in self._state.items():
            silent = now - st.seen
            if silent > self.stale_after_s and now - st.stale_reported >= self.stale_after_s:
                st.stale_reported = now
                out.append(self.event("stale", pid, now_ns, f"no value for {silent:.0f} s"))
        return out

    def last_raw(self, point_id: str) -> tuple[float | None, int]:
        st = self._state[point_id]
        return st.raw, st.ts_ns

    def seed_last(self, point_id: str, raw: float, ts_ns: int) -> None:
        """Restore the last counter reading (after a restart), for rollover/reset checks."""
        st = self._state[point_id]
        st.raw, st.ts_ns = raw, ts_ns
