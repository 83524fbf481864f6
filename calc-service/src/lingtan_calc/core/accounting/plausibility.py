"""Plausibility of interval consumption: quarantine, confirmation and correction.

Pure functions on the interval frames of :mod:`lingtan_calc.core.accounting.consumption` (index = interval
end, ``start``, ``delta``, ``event``). An interval whose consumption exceeds what the meter's
rated capacity could deliver in it (:func:`lingtan.park.counters.consumption_limit`) is
*quarantined*: it counts zero and is reported, until a person either *confirms* it (the
measured value counts) or *corrects* it (a stated quantity replaces the measured one for the
interval's time range). Decisions are ranges of time per point, so they keep applying when
late readings split an interval or a recalculation reads the readings differently.

References
----------
docs/accounting.md §1 (counter semantics and plausibility).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lingtan.park.counters import consumption_limit
from lingtan_calc.core.accounting.consumption import Replacement


@dataclass(frozen=True)
class Correction:
    """A person's quantity for a point over [start, end) [canonical unit], replacing the metered one."""

    start: pd.Timestamp
    end: pd.Timestamp
    quantity: float


@dataclass(frozen=True)
class PointAdjustments:
    """What people have said about one point's readings (all recorded with author and reason)."""

    replacements: tuple[Replacement, ...] = ()
    confirmed: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()  # intervals accepted as measured
    corrections: tuple[Correction, ...] = ()
    quarantined: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()  # open quarantines, not yet decided

    @property
    def accepted(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The ranges a person has decided on (confirmed or corrected): not screened again."""
        return list(self.confirmed) + [(c.start, c.end) for c in self.corrections]

    def ranges(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Every time range a decision, replacement or open quarantine covers: the bulk path
        recomputes these hours from every reading, as the schedule did when it found them."""
        return self.accepted + list(self.quarantined) + [(r.time, r.time) for r in self.replacements]


@dataclass
class Adjustments:
    """Per point id; empty for points nobody has touched."""

    points: dict[str, PointAdjustments] = field(default_factory=dict)

    def of(self, point_id: str) -> PointAdjustments:
        return self.points.get(point_id, _NONE)


_NONE = PointAdjustments()


def _overlaps(start: np.ndarray, end: np.ndarray, ranges) -> np.ndarray:
    """Which intervals (start, end] share time with any of ``ranges`` (a, b]."""
    hit = np.zeros(len(start), dtype=bool)
    for a, b in ranges:
        a, b = pd.Timestamp(a).value, pd.Timestamp(b).value
        hit |= (start < b) & (end > a)
    return hit


def _ns(values) -> np.ndarray:
    return pd.DatetimeIndex(values).as_unit("ns").asi8


def screen(deltas: pd.DataFrame, capacity: float, step: float = 0.0,
           accepted: list[tuple[pd.Timestamp, pd.Timestamp]] | tuple = ()) -> pd.DataFrame:
    """Quarantine the intervals no meter of ``capacity`` could have delivered.

    Parameters
    ----------
    deltas : pandas.DataFrame
        Intervals (index = end, ``start``, ``delta`` [unit]).
    capacity : float
        Rated capacity [unit/h] (:func:`lingtan.park.counters.rated_capacity`).
    step : float
        One count of the register [unit] (:func:`lingtan.park.counters.register_step`).
    accepted : sequence of (start, end)
        Ranges a person has confirmed or corrected: intervals touching them are not screened.

    Returns
    -------
    pandas.DataFrame
        ``deltas`` plus ``measured`` (the delta as read), ``limit`` [unit] and ``quarantined``
        (bool); a quarantined interval's ``delta`` is 0.
    """
    start, end = _ns(deltas["start"]), _ns(deltas.index)
    limit = consumption_limit(capacity, (end - start) / 3.6e12, step)
    measured = deltas["delta"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = measured > limit  # NaN (a rate gap) compares False
    if len(accepted) and bad.any():
        bad &= ~_overlaps(start, end, accepted)
    return pd.DataFrame({"start": deltas["start"].to_numpy(), "delta": np.where(bad, 0.0, measured),
                         "event": deltas["event"].to_numpy(), "measured": measured, "limit": limit,
                         "quarantined": bad}, index=deltas.index)


def substitute(deltas: pd.DataFrame, corrections: tuple[Correction, ...] | list[Correction]) -> pd.DataFrame:
    """Replace the metered consumption inside each correction's range by the corrected quantity.

    The part of every interval that overlaps [start, end) is removed in proportion to time
    (as :func:`lingtan_calc.core.accounting.consumption.spread` distributes it), and the correction is added
    as an interval of its own, event ``corrected``.
    """
    if not len(corrections):
        return deltas
    out = deltas.copy()
    start, end = _ns(out["start"]), _ns(out.index)
    duration = (end - start).astype(float)
    keep = np.ones(len(out))
    rows = []
    for c in corrections:
        a, b = pd.Timestamp(c.start).value, pd.Timestamp(c.end).value
        overlap = np.clip(np.minimum(end, b) - np.maximum(start, a), 0, None)
        with np.errstate(invalid="ignore", divide="ignore"):
            keep -= np.where(duration > 0, overlap / duration, 0.0)
        rows.append({"start": pd.Timestamp(c.start), "delta": float(c.quantity), "event": "corrected",
                     "end": pd.Timestamp(c.end)})
    out["delta"] = out["delta"] * np.clip(keep, 0.0, 1.0)
    extra = pd.DataFrame(rows).set_index("end")
    extra.index = pd.DatetimeIndex(extra.index).tz_convert(out.index.tz or "UTC")
    extra["start"] = pd.DatetimeIndex(extra["start"]).tz_convert(out.index.tz or "UTC")
    if "measured" in out:
        extra["measured"], extra["limit"], extra["quarantined"] = extra["delta"], np.nan, False
    both = pd.concat([out, extra[[c for c in out.columns if c in extra.columns]]])
    return both.sort_index(kind="stable")
