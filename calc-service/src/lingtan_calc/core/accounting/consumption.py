"""Consumption from raw meter series, and its aggregation on the Asia/Shanghai calendar.

Pure, vectorised functions on pandas objects. A raw series is what the collectors store
(docs/schema.md): values in the canonical unit of the carrier, indexed by UTC timestamps.

* :func:`counter_deltas` turns cumulative counter readings into the consumption of each
  interval between readings, with the drop rules of :mod:`lingtan.park.counters` (rollover,
  reset, backwards), meter replacements, duplicates and late or out-of-order points.
* :func:`rate_deltas` integrates instantaneous rates (trapezoidal rule), leaving gaps longer
  than ``max_gap`` unintegrated and reporting them.
* :func:`spread` distributes interval amounts over calendar periods in proportion to time,
  so that a reading interval that spans an hour (or a gap that spans a day) is split
  correctly; :func:`calendar_sum` adds them up per hour, day, month or year.

All calendar periods are Asia/Shanghai (UTC+8, no daylight saving).

References
----------
GB/T 2589-2020 综合能耗计算通则, ch. 6 (计算范围: the reporting period's consumption).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lingtan.park import counters

TZ = "Asia/Shanghai"
#: period names accepted by :func:`period_starts`, with their pandas frequency
FREQS = {"hour": "h", "day": "D", "month": "MS", "year": "YS"}


def _clean(readings: pd.Series) -> pd.Series:
    """Sorted by time, one value per timestamp (the last received wins), NaN dropped."""
    s = readings.dropna()
    if not s.index.is_monotonic_increasing:
        s = s.sort_index(kind="stable")
    if s.index.has_duplicates:
        s = s[~s.index.duplicated(keep="last")]
    s = s.astype(float)
    s.index = pd.DatetimeIndex(s.index).as_unit("ns")  # asi8 below is nanoseconds
    return s


def _empty_deltas(index: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"start": pd.Series(dtype=index.dtype), "delta": pd.Series(dtype=float),
                         "event": pd.Series(dtype=object)}, index=index[:0])


@dataclass(frozen=True)
class Replacement:
    """A meter replaced at ``time``: the old register's final and the new one's first reading [unit]."""

    time: pd.Timestamp
    old_final: float
    new_initial: float


def counter_deltas(readings: pd.Series, modulus: float | None = None, *, capacity: float | None = None,
                   step: float = 0.0, replacements: tuple[Replacement, ...] | list[Replacement] = ()) -> pd.DataFrame:
    """Consumption between consecutive readings of a cumulative counter.

    Parameters
    ----------
    readings : pandas.Series
        Counter values [canonical unit, e.g. kWh], indexed by tz-aware timestamps. Order,
        duplicates and NaN do not matter (late points are sorted in; for a timestamp seen
        twice the later value wins).
    modulus : float, optional
        Value at which the counter wraps [same unit], e.g. 2**32 × scale for a uint32
        register (:func:`lingtan.park.counters.canonical_modulus`).
    capacity : float, optional
        The meter's rated capacity [unit/h] (:func:`lingtan.park.counters.rated_capacity`): after a
        drop, a reading no larger than what it could have delivered since the previous reading is
        "near zero" (a reset). Without it only the fraction of the previous reading decides.
    step : float
        One count of the register [unit] (:func:`lingtan.park.counters.register_step`).
    replacements : sequence of Replacement
        Meter replacements: readings up to and including a replacement's time are the old
        meter's; the interval from the last of them to the first of the new meter counts
        ``old_final − previous`` of the old register plus ``value − new_initial`` of the new one.

    Returns
    -------
    pandas.DataFrame
        One row per interval, indexed by the interval end, with columns ``start`` (the
        previous reading's time), ``delta`` [unit, never negative] and ``event``: ``""``,
        ``"rollover"``, ``"reset"``, ``"backwards"`` or ``"replacement"`` — the drop rules of
        :mod:`lingtan.park.counters` (a backwards step counts zero, and the next increase is
        measured from the new value).
    """
    s = _clean(readings)
    values = s.to_numpy()
    if len(values) < 2:
        return _empty_deltas(s.index)
    floor = 0.0
    if capacity is not None:
        floor = counters.reset_floor(capacity, np.diff(s.index.as_unit("ns").asi8) / 3.6e12, step)
    delta, code = counters.step_consumption(values[:-1], values[1:], modulus, floor)
    out = pd.DataFrame({"start": s.index[:-1], "delta": delta, "event": counters.EVENT_NAMES[code]},
                       index=s.index[1:])
    if len(replacements):
        _replace(out, values, replacements, modulus)
    return out


def _replace(deltas: pd.DataFrame, values: np.ndarray, replacements, modulus: float | None) -> None:
    """Recount, in place, each interval that a meter replacement falls in (start <= time < end)."""
    ends = pd.DatetimeIndex(deltas.index)
    crossing: dict[int, list[Replacement]] = {}
    for r in sorted(replacements, key=lambda r: r.time):
        i = int(ends.searchsorted(pd.Timestamp(r.time), side="right"))
        if i < len(ends) and pd.Timestamp(deltas["start"].iloc[i]) <= pd.Timestamp(r.time):
            crossing.setdefault(i, []).append(r)
    col_delta, col_event = deltas.columns.get_loc("delta"), deltas.columns.get_loc("event")
    for i, group in crossing.items():
        # old register up to its final reading, then the new one from its first (each may wrap)
        starts = [values[i], *(r.new_initial for r in group)]
        ends = [*(r.old_final for r in group), values[i + 1]]
        total = float(counters.step_consumption(np.array(starts), np.array(ends), modulus)[0].sum())
        deltas.iat[i, col_delta] = total
        deltas.iat[i, col_event] = "replacement"


def rate_deltas(rates: pd.Series, max_gap: pd.Timedelta | str = "15min") -> pd.DataFrame:
    """Energy (or volume, mass) between consecutive samples of an instantaneous rate.

    Parameters
    ----------
    rates : pandas.Series
        Rate samples [canonical rate unit, always "per hour": kW, m3/h, t/h, GJ/h, L/h],
        indexed by tz-aware timestamps.
    max_gap : pandas.Timedelta or str
        Longest interval that is integrated. A longer one is a gap: its ``delta`` is NaN,
        because nothing is known about the rate in between.

    Returns
    -------
    pandas.DataFrame
        Indexed by the interval end, columns ``start`` and ``delta`` [rate unit × h]
        (trapezoidal rule: mean of the two samples × duration), and ``event`` (``"gap"``).
    """
    s = _clean(rates)
    max_gap = pd.Timedelta(max_gap)
    if len(s) < 2:
        return _empty_deltas(s.index)
    values = s.to_numpy()
    seconds = np.diff(s.index.as_unit("ns").asi8) / 1e9
    hours = seconds / 3600.0
    delta = (values[1:] + values[:-1]) / 2.0 * hours
    gap = seconds > max_gap.total_seconds()
    delta = np.where(gap, np.nan, delta)
    event = np.where(gap, "gap", "").astype(object)
    return pd.DataFrame({"start": s.index[:-1], "delta": delta, "event": event}, index=s.index[1:])


def period_starts(index: pd.DatetimeIndex, period: str) -> pd.DatetimeIndex:
    """Start of the Asia/Shanghai ``period`` (hour, day, month, year) containing each timestamp."""
    local = index.tz_convert(TZ)
    if period == "hour":
        return local.floor("h")
    if period == "day":
        return local.floor("D")
    if period in ("month", "year"):
        naive = local.tz_localize(None).to_numpy().astype("datetime64[M]" if period == "month" else "datetime64[Y]")
        return pd.DatetimeIndex(naive.astype("datetime64[ns]")).tz_localize(TZ)
    raise ValueError(f"period {period!r} is not one of {sorted(FREQS)}")


def _next_start(starts: pd.DatetimeIndex, period: str) -> pd.DatetimeIndex:
    if period == "hour":
        return starts + pd.Timedelta(hours=1)
    if period == "day":
        return starts + pd.Timedelta(days=1)  # no daylight saving in Asia/Shanghai
    offset = pd.offsets.MonthBegin(1) if period == "month" else pd.offsets.YearBegin(1)
    return starts + offset


#: fixed periods on integer nanoseconds: Asia/Shanghai is UTC+8 all year (no daylight saving)
_FIXED_NS = {"hour": 3_600_000_000_000, "day": 86_400_000_000_000}
_UTC_OFFSET_NS = 8 * 3_600_000_000_000


def _period_ns(ns: np.ndarray, period: str) -> np.ndarray:
    """Start of the Asia/Shanghai ``period`` containing each epoch-nanosecond instant [epoch ns]."""
    if period in _FIXED_NS:
        width = _FIXED_NS[period]
        return (ns + _UTC_OFFSET_NS) // width * width - _UTC_OFFSET_NS
    return period_starts(pd.DatetimeIndex(ns, tz="UTC"), period).as_unit("ns").asi8


def spread(deltas: pd.DataFrame, period: str) -> pd.Series:
    """Distribute interval amounts over Asia/Shanghai periods, in proportion to time.

    Parameters
    ----------
    deltas : pandas.DataFrame
        As returned by :func:`counter_deltas` or :func:`rate_deltas`: index = interval end,
        ``start``, ``delta``. NaN deltas (gaps) are skipped.
    period : str
        ``hour``, ``day``, ``month`` or ``year``.

    Returns
    -------
    pandas.Series
        Amount per period start (tz Asia/Shanghai), sorted; periods without any interval
        are absent (not zero).
    """
    amount = deltas["delta"].to_numpy(dtype=float)
    keep = ~np.isnan(amount)
    if not keep.any():
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz=TZ))
    end = pd.DatetimeIndex(deltas.index).as_unit("ns").asi8[keep]
    start = pd.DatetimeIndex(deltas["start"]).as_unit("ns").asi8[keep]
    amount = amount[keep]
    # an interval belongs to the period of its end unless it started in an earlier one;
    # the end instant itself belongs to the interval (start, end]
    p_end = _period_ns(end - 1, period)
    p_start = _period_ns(start, period)
    inside = p_start == p_end
    keys, vals = [p_end[inside]], [amount[inside]]
    if not inside.all():
        # the few intervals that cross a boundary: split by overlap duration
        idx, parts = [], []
        for i in np.flatnonzero(~inside):
            total = float(end[i] - start[i])
            if total <= 0:
                continue
            p = int(p_start[i])
            while p < end[i]:
                q = int(_next_start(pd.DatetimeIndex([p], tz="UTC").tz_convert(TZ), period).as_unit("ns").asi8[0]) \
                    if period not in _FIXED_NS else p + _FIXED_NS[period]
                lo, hi = max(start[i], p), min(end[i], q)
                if hi > lo:
                    idx.append(p)
                    parts.append(amount[i] * (hi - lo) / total)
                p = q
        keys.append(np.asarray(idx, dtype=np.int64))
        vals.append(np.asarray(parts, dtype=float))
    uniq, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    sums = np.bincount(inverse, weights=np.concatenate(vals), minlength=len(uniq))
    return pd.Series(sums, index=pd.DatetimeIndex(uniq, tz="UTC").tz_convert(TZ))


def calendar_sum(amounts: pd.Series, period: str) -> pd.Series:
    """Re-aggregate amounts per finer period (hour or day starts) into ``period`` [same unit]."""
    if amounts.empty:
        return amounts
    return amounts.groupby(period_starts(pd.DatetimeIndex(amounts.index), period)).sum().sort_index()


def counter_deltas_wide(readings: pd.DataFrame, moduli: np.ndarray | None = None,
                        capacities: np.ndarray | None = None,
                        steps: np.ndarray | float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`counter_deltas` for many counters read at the same instants (bulk recalculation).

    Parameters
    ----------
    readings : pandas.DataFrame
        Index: reading instants (tz-aware, ascending), one column per point [canonical unit];
        NaN where a point has no reading at that instant.
    moduli : numpy.ndarray, optional
        Rollover modulus per column [same unit]; NaN or absent for counters that do not wrap.
    capacities, steps : numpy.ndarray, optional
        Rated capacity [unit/h] and register step [unit] per column (see :func:`counter_deltas`).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        Deltas and event codes. Row *i* is the consumption from instant *i* to instant *i+1*
        (indexed by instant *i*, i.e. the start of the interval), never negative, and its
        event code (0 none; names in :data:`lingtan.park.counters.EVENT_NAMES`). A missing reading is bridged by linear
        interpolation of the counter between its neighbours (the gap's consumption is spread
        evenly over it, as :func:`spread` does).
    """
    values = readings.interpolate(method="time", limit_area="inside").to_numpy(dtype=float)
    mod = np.full(values.shape[1], np.nan) if moduli is None else np.asarray(moduli, dtype=float)
    floors: np.ndarray | float = 0.0
    if capacities is not None:
        hours = np.diff(pd.DatetimeIndex(readings.index).as_unit("ns").asi8)[:, None] / 3.6e12
        floors = counters.reset_floor(np.asarray(capacities, dtype=float)[None, :], hours,
                                      np.asarray(steps, dtype=float))
    with np.errstate(invalid="ignore"):
        delta, code = counters.step_consumption(values[:-1], values[1:], mod, floors)
    index, columns = readings.index[:-1], readings.columns
    return pd.DataFrame(delta, index=index, columns=columns), pd.DataFrame(code, index=index, columns=columns)
