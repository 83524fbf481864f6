"""The simulated park state: every point's canonical value, stepped by a simulated clock.

Tick ``k`` happens at simulated time ``t_k = start + k * step`` with ``step = tick_s x speed``.
At each tick every rate point shows its channel's rate, held until the next tick, and every
counter point shows its reading, advanced by exactly ``rate x step``:
``C_{k+1} = C_k + r_k * step_h`` (see :func:`lingtan_tools.simulate.physics.integrate_rate`).

Values are a deterministic function of ``(park, seed, start, step, k)``; faults that
reset counters are the only outside influence. Rates are produced 256 ticks at a time by
:class:`lingtan_tools.simulate.models.ParkRates` (vectorised pvlib and numpy calls), the engine
only indexes into them.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from lingtan.park import counters
from lingtan.park.carriers import Kind
from lingtan.park.index import PointRef, iter_points
from lingtan.park.model import Park
from lingtan_collectors.common import codec
from lingtan_tools.simulate.models import ParkRates, channel_of, stable_seed

CHUNK = 256


def to_utc(t: dt.datetime, tz: str) -> dt.datetime:
    """Aware UTC datetime; a naive ``t`` is read as local time in ``tz``."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=ZoneInfo(tz))
    return t.astimezone(dt.UTC)


class Engine:
    """Canonical values of all points of a park at consecutive ticks.

    Parameters
    ----------
    park : Park
        The park model; meters without a ``simulation`` block read 0 (counters stand still).
    seed : int
        Seed of all random processes (noise, clouds, wind, initial counter readings).
    start : datetime
        Simulated time of tick 0 (naive = park local time).
    step_s : float
        Simulated seconds between ticks (``tick_s x speed``).
    resume : mapping of point id to float, optional
        Counter readings to resume from [canonical unit, unwrapped], as a real meter keeps its
        register across a restart (:meth:`counter_state`); other counters start seeded.
    """

    def __init__(self, park: Park, *, seed: int = 1, start: dt.datetime, step_s: float = 1.0,
                 resume: dict[str, float] | None = None) -> None:
        self.park = park
        self.seed = seed
        self.tz = park.park.timezone
        self.step_ns = round(step_s * 1e9)
        if self.step_ns <= 0:
            raise ValueError(f"step_s must be > 0, got {step_s}")
        self.step_s = self.step_ns / 1e9
        self.dt_h = self.step_ns / 3.6e12
        start_utc = to_utc(start, self.tz)
        self.start_ns = int(pd.Timestamp(start_utc).value)
        self.refs: list[PointRef] = iter_points(park)
        self.index: dict[str, int] = {r.id: i for i, r in enumerate(self.refs)}
        self.rates = ParkRates(park, seed=seed, step_s=self.step_s)
        chan_index = {key: i for i, key in enumerate(self.rates.channels)}
        self._channel = np.array([chan_index[(r.meter.id, channel_of(r.meter, r.point.role))] for r in self.refs], dtype=int)
        self.is_counter = np.array([r.point.kind is Kind.counter for r in self.refs], dtype=bool)
        saved = resume or {}
        self.totals = np.array([float(saved[r.id]) if r.id in saved and self.is_counter[i] else self._initial_reading(r)
                                for i, r in enumerate(self.refs)])
        self.values = np.zeros(len(self.refs))
        self.tick = -1
        self._chunk: np.ndarray | None = None
        self._chunk_k0 = 0
        self._prev = np.zeros(len(self.rates.channels))

    # ------------------------------------------------------------------ clock

    def time_ns(self, k: int) -> int:
        """Simulated time of tick ``k`` [ns since the Unix epoch, UTC]."""
        return self.start_ns + k * self.step_ns

    def time_at(self, k: int) -> dt.datetime:
        """Simulated time of tick ``k`` as an aware UTC datetime (microsecond resolution)."""
        return dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=self.time_ns(k) // 1000)

    def ts_ms(self, k: int) -> int:
        """Simulated time of tick ``k`` [ms since the Unix epoch]."""
        return self.time_ns(k) // 1_000_000

    # ------------------------------------------------------------------ state

    def _initial_reading(self, ref: PointRef) -> float:
        """Seeded first counter reading; uint16 and ``rollover`` counters start close to their wrap."""
        if ref.point.kind is not Kind.counter:
            return 0.0
        rng = np.random.default_rng(stable_seed(self.seed, ref.id + "#initial"))
        simulated = ref.meter.simulation.capacity if ref.meter.simulation is not None else 1.0
        # a main meter's simulated capacity is its own load; what flows through it (its sub-meters' too) is
        # bounded by its rated capacity (docs/accounting.md §1), which the hours below must be counted at
        cap = max(simulated, counters.rated_capacity(ref.meter))
        modulus = counters.canonical_modulus(ref)
        near_wrap = ref.point.rollover is not None or (
            ref.point.modbus is not None and codec.INTEGER_BITS.get(ref.point.modbus.type) == 16
        )
        if modulus is not None and near_wrap:
            # a few minutes of full-capacity flow before the wrap
            return max(0.0, modulus - cap * rng.uniform(60.0, 600.0) / 3600.0)
        # a meter in service for a while: 2,500 .. 20,000 full-load hours, more than the longest backfill
        # (89 days = 2,136 h, docs/simulator.md) can count back, so a backfilled counter never starts below 0
        reading = cap * rng.uniform(2500.0, 20000.0)
        if modulus is not None:
            reading = min(reading, 0.25 * modulus)
        return float(reading)

    def _rates_at(self, k: int) -> np.ndarray:
        if self._chunk is None or not self._chunk_k0 <= k < self._chunk_k0 + CHUNK:
            k0 = (k // CHUNK) * CHUNK
            ns = self.start_ns + np.arange(k0, k0 + CHUNK, dtype=np.int64) * self.step_ns
            times = pd.DatetimeIndex(ns, tz="UTC").tz_convert(self.tz)
            rates = self.rates.next_chunk(times)
            self._chunk = np.vstack([rates[key] for key in self.rates.channels])
            self._chunk_k0 = k0
        return self._chunk[:, k - self._chunk_k0]

    def step(self) -> None:
        """Advance one tick: counters integrate the previous rates, rates take the new values."""
        k = self.tick + 1
        rates = self._rates_at(k)
        if k > 0:
            self.totals += np.where(self.is_counter, self._prev[self._channel] * self.dt_h, 0.0)
        self._prev = rates.copy()
        self.values = np.where(self.is_counter, self.totals, rates[self._channel])
        self.tick = k

    def advance_to(self, k: int) -> None:
        """Step until tick ``k`` (no-op if already there)."""
        while self.tick < k:
            self.step()

    def counter_state(self) -> dict[str, float]:
        """Every counter's reading now [canonical unit, unwrapped], to resume from after a restart."""
        return {r.id: float(self.totals[i]) for i, r in enumerate(self.refs) if self.is_counter[i]}

    def reset_counters(self, point_ids: list[str] | tuple[str, ...]) -> None:
        """Counter points among ``point_ids`` read 0 from now on and count up again."""
        for pid in point_ids:
            i = self.index[pid]
            if self.is_counter[i]:
                self.totals[i] = 0.0
                self.values[i] = 0.0

    # ------------------------------------------------------------------ readings

    def canonical(self, point_id: str) -> float:
        """Current value of a point in its canonical unit (counters unwrapped)."""
        return float(self.values[self.index[point_id]])

    def wire(self, point_id: str) -> codec.Wire:
        """Current raw value as the device reports it (wrapped, quantised)."""
        i = self.index[point_id]
        return codec.to_wire(self.refs[i], float(self.values[i]))
