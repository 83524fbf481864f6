"""The metered path: raw counter readings in InfluxDB → consumption per point and period.

Reads only through the v1 API (InfluxQL on /query; DEVELOPERS.md decision 1). For a range
[start, end) it reads every counter reading of the boundary points in the range plus the
last reading before it and the first after it, so that the intervals crossing the range's
edges are split by time (:func:`lingtan_calc.core.accounting.consumption.spread`) rather than lost. Readings
come back per point (``GROUP BY "point"``) with epoch-nanosecond timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import pandas as pd

from lingtan.influxdb import InfluxClient, InfluxError
from lingtan.park.carriers import Kind
from lingtan.park.counters import (
    canonical_modulus,
    consumption_limit,
    rated_capacity,
    register_step,
)
from lingtan.park.index import PointRef
from lingtan_calc.core.accounting.consumption import (
    counter_deltas,
    counter_deltas_wide,
    period_starts,
    rate_deltas,
    spread,
)
from lingtan_calc.core.accounting.plausibility import Adjustments, PointAdjustments, screen, substitute

#: how far back (and forward) to look for the reading that bounds a range
EDGE_WINDOW = pd.Timedelta(days=7)
#: points per InfluxQL statement (a regex of point ids; keeps each statement short)
POINTS_PER_QUERY = 200


def _ts(t: pd.Timestamp) -> str:
    return f"'{pd.Timestamp(t).tz_convert('UTC').strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"


def _point_regex(ids: list[str]) -> str:
    import re

    return "/^(" + "|".join(re.escape(i).replace("/", r"\/") for i in ids) + ")$/"


def _sources(client: InfluxClient, refs: list[PointRef], retention_policy: str):
    """``(measurement, WHERE clause on point)`` per carrier and chunk of at most POINTS_PER_QUERY points."""
    by_carrier: dict[str, list[str]] = defaultdict(list)
    for r in refs:
        by_carrier[r.carrier.value].append(r.id)
    for carrier, ids in by_carrier.items():
        src = f'"{client.database}"."{retention_policy}"."{carrier}"'
        for i in range(0, len(ids), POINTS_PER_QUERY):
            yield src, f'"point" =~ {_point_regex(ids[i:i + POINTS_PER_QUERY])}'


def counter_points(refs: list[PointRef], wanted: set[str] | None = None) -> list[PointRef]:
    return [r for r in refs if r.point.kind is Kind.counter and (wanted is None or r.id in wanted)]


def read_counters(client: InfluxClient, refs: list[PointRef], start: pd.Timestamp, end: pd.Timestamp,
                  retention_policy: str = "raw", bucket: str | None = "1m") -> dict[str, pd.Series]:
    """Counter readings of ``refs`` in [start, end) plus one bounding reading on each side.

    ``bucket`` (an InfluxQL duration) lets the server reduce the readings to the last one per
    bucket, stamped at the bucket's end: consumption only needs a reading now and then (and
    every drop, to see a rollover or reset), and a minute of 1-5 s readings becomes one row.
    Next to every hour boundary the exact last reading before it and first reading after it
    replace the bucketed ones, so that the hour split is as exact as with every raw reading.
    ``bucket=None`` reads every raw reading.

    Returns one Series per point id [canonical unit], indexed by UTC timestamps; a point
    without any reading is absent.
    """
    width = pd.Timedelta(bucket) if bucket else pd.Timedelta(0)
    # exact readings either side of every hour boundary: the hour split never depends on a bucket
    bounds = list(pd.date_range(pd.Timestamp(start).ceil("h"), pd.Timestamp(end).floor("h"), freq="h")) if bucket else []
    parts: dict[str, list[pd.Series]] = defaultdict(list)
    exact: dict[str, list[pd.Series]] = defaultdict(list)
    for src, where in _sources(client, refs, retention_policy):
        stmts = [f'SELECT last("total") AS "total" FROM {src} WHERE {where} AND time < {_ts(start)} '
                 f'AND time >= {_ts(start - EDGE_WINDOW)} GROUP BY "point"',
                 f'SELECT first("total") AS "total" FROM {src} WHERE {where} AND time >= {_ts(end)} '
                 f'AND time < {_ts(end + EDGE_WINDOW)} GROUP BY "point"']
        if bucket:
            stmts.append(f'SELECT last("total") AS "total" FROM {src} WHERE {where} AND time >= {_ts(start)} '
                         f'AND time < {_ts(end)} GROUP BY time({bucket}), "point" fill(none)')
            for b in bounds:
                stmts.append(f'SELECT last("total") AS "total" FROM {src} WHERE {where} AND time < {_ts(b)} '
                             f'AND time >= {_ts(b - pd.Timedelta(hours=1))} GROUP BY "point"')
                stmts.append(f'SELECT first("total") AS "total" FROM {src} WHERE {where} AND time >= {_ts(b)} '
                             f'AND time < {_ts(b + pd.Timedelta(hours=1))} GROUP BY "point"')
        else:
            stmts.append(f'SELECT "total" FROM {src} WHERE {where} AND time >= {_ts(start)} '
                         f'AND time < {_ts(end)} GROUP BY "point"')
        for result in client.query(";".join(stmts), epoch="ns"):
            sid = result.get("statement_id", 0)
            for ser in result.get("series", []):
                values = ser["values"]
                if not values:
                    continue
                idx = pd.DatetimeIndex([v[0] for v in values], tz="UTC")
                if bucket and sid == 2:
                    idx = idx + width  # a bucket's last reading, stamped at the bucket's end
                series = pd.Series([v[1] for v in values], index=idx, dtype=float)
                (exact if bucket and sid >= 3 else parts)[ser["tags"]["point"]].append(series)
    out = {}
    for pid in set(parts) | set(exact):
        s = pd.concat(parts.get(pid, [])) if parts.get(pid) else pd.Series(dtype=float)
        if bucket and bounds:
            # bucketed readings next to a boundary give way to the exact ones
            near = np.zeros(len(s), dtype=bool)
            for b in bounds:
                near |= (s.index > b - width) & (s.index <= b + width)
            s = s[~near]
        if exact.get(pid):
            s = pd.concat([s, *exact[pid]])
        out[pid] = s.sort_index()
    return out


def bounding_readings(client: InfluxClient, ref: PointRef, t: pd.Timestamp,
                      retention_policy: str = "raw") -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Times of the counter's last reading before ``t`` and first reading at or after it (within
    :data:`EDGE_WINDOW`): the interval that a replacement at ``t`` falls in."""
    src = f'"{client.database}"."{retention_policy}"."{ref.carrier.value}"'
    where = f"\"point\" = '{ref.id}'"
    q = (f'SELECT last("total") FROM {src} WHERE {where} AND time < {_ts(t)} AND time >= {_ts(t - EDGE_WINDOW)};'
         f'SELECT first("total") FROM {src} WHERE {where} AND time >= {_ts(t)} AND time < {_ts(t + EDGE_WINDOW)}')
    found: list[pd.Timestamp | None] = [None, None]
    for result in client.query(q, epoch="ns"):
        for ser in result.get("series", []):
            if ser["values"]:
                found[result.get("statement_id", 0)] = pd.Timestamp(ser["values"][0][0], unit="ns", tz="UTC")
    return found[0], found[1]


def read_rates(client: InfluxClient, refs: list[PointRef], start: pd.Timestamp, end: pd.Timestamp,
               retention_policy: str = "raw", bucket: str = "1m") -> dict[str, pd.Series]:
    """Mean rate per ``bucket`` of rate points [canonical rate unit], stamped at the bucket's
    middle, from one bucket before ``start`` to one after ``end`` (so the hours at the range's
    edges integrate whole)."""
    width = pd.Timedelta(bucket)
    out: dict[str, list[pd.Series]] = defaultdict(list)
    for src, where in _sources(client, refs, retention_policy):
        q = (f'SELECT mean("rate") AS "rate" FROM {src} WHERE {where} AND time >= {_ts(start - width)} '
             f'AND time < {_ts(end + width)} GROUP BY time({bucket}), "point" fill(none)')
        for ser in client.series(q, epoch="ns"):
            values = ser["values"]
            if values:
                idx = pd.DatetimeIndex([v[0] for v in values], tz="UTC") + width / 2
                out[ser["tags"]["point"]].append(pd.Series([v[1] for v in values], index=idx, dtype=float))
    return {pid: pd.concat(ss).sort_index() for pid, ss in out.items()}


def point_deltas(series: pd.Series, ref: PointRef, adjustments: PointAdjustments,
                 max_gap: str = "15min") -> pd.DataFrame:
    """Intervals of one point's readings: consumption by the counter rules (or the integrated
    rate), screened for plausibility, with the people's replacements, confirmations and
    corrections applied (:mod:`lingtan_calc.core.accounting.plausibility`)."""
    capacity, step = rated_capacity(ref.meter), register_step(ref)
    if ref.point.kind is Kind.counter:
        deltas = counter_deltas(series, canonical_modulus(ref), capacity=capacity, step=step,
                                replacements=adjustments.replacements)
    else:  # a meter without a counter: integrate its rate; gaps longer than max_gap stay unknown
        deltas = rate_deltas(series, max_gap)
    deltas = screen(deltas, capacity, step, adjustments.accepted)
    return substitute(deltas, adjustments.corrections)


def _quarantined(deltas: pd.DataFrame, ref: PointRef, lo: pd.Timestamp, hi: pd.Timestamp) -> list[dict]:
    """The quarantined intervals of ``deltas`` that overlap [lo, hi)."""
    bad = deltas[deltas["quarantined"]]
    if bad.empty:
        return []
    ends = pd.DatetimeIndex(bad.index)
    starts = pd.DatetimeIndex(bad["start"])
    inside = (starts < hi) & (ends > lo)
    return [{"point": ref.id, "meter": ref.meter.id, "enterprise": ref.enterprise.id,
             "carrier": ref.carrier.value, "start": a, "end": b, "measured": float(m), "limit": float(lim),
             "event": e} for a, b, m, lim, e in zip(starts[inside], ends[inside], bad["measured"][inside],
                                                    bad["limit"][inside], bad["event"][inside], strict=True)]


def _events_per_period(deltas: pd.DataFrame, period: str, periods: pd.DatetimeIndex) -> np.ndarray:
    """How many intervals with an event (or quarantined) end in each of ``periods``."""
    flagged = (deltas["event"].to_numpy() != "") | deltas["quarantined"].to_numpy()
    if not flagged.any():
        return np.zeros(len(periods), dtype=int)
    ends = pd.DatetimeIndex(deltas.index[flagged]) - pd.Timedelta(1, "ns")  # (start, end] ends in its period
    counts = pd.Series(1, index=period_starts(ends, period)).groupby(level=0).sum()
    return counts.reindex(periods, fill_value=0).to_numpy(dtype=int)


def quantities(readings: dict[str, pd.Series], refs: list[PointRef], period: str, start: pd.Timestamp,
               end: pd.Timestamp, max_gap: str = "15min", adjustments: Adjustments | None = None,
               quarantined: list[dict] | None = None) -> pd.DataFrame:
    """Consumption per point and ``period`` (hour, day, …) for periods starting in [start, end).

    Counter points give the differences of their readings; rate points (meters without a
    counter) their integral [rate unit × h = the counter unit]. Intervals above the meter's
    capacity count zero; each is appended to ``quarantined`` (when given) as a dict with
    point, meter, enterprise, carrier, start, end, measured, limit and event.

    Returns columns ``period``, ``point``, ``quantity`` [canonical unit], ``events`` (count of
    rollovers, resets, backward steps, replacements, gaps and quarantined intervals).
    """
    adjustments = adjustments or Adjustments()
    by_id = {r.id: r for r in refs}
    frames = []
    lo = pd.Timestamp(start).tz_convert("Asia/Shanghai")
    hi = pd.Timestamp(end).tz_convert("Asia/Shanghai")
    corrected = {pid for pid, a in adjustments.points.items() if a.corrections and pid in by_id}
    for pid in sorted(set(readings) | corrected):
        ref = by_id.get(pid)
        if ref is None:
            continue
        series = readings.get(pid, pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC")))
        deltas = point_deltas(series, ref, adjustments.of(pid), max_gap)
        if quarantined is not None:
            quarantined += _quarantined(deltas, ref, lo, hi)
        per = spread(deltas, period)
        per = per[(per.index >= lo) & (per.index < hi)]
        if per.empty:
            continue
        frames.append(pd.DataFrame({"period": per.index, "point": pid, "quantity": per.to_numpy(),
                                    "events": _events_per_period(deltas, period, per.index)}))
    if not frames:
        return pd.DataFrame({"period": pd.Series(dtype="datetime64[ns, Asia/Shanghai]"),
                             "point": pd.Series(dtype=object), "quantity": pd.Series(dtype=float),
                             "events": pd.Series(dtype=int)})
    return pd.concat(frames, ignore_index=True)


def hour_floor(t: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(t).tz_convert("Asia/Shanghai").floor("h")


def _month_chunks(start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    out, t = [], pd.Timestamp(start)
    while t < end:
        u = min(pd.Timestamp(end), (t.tz_convert("Asia/Shanghai") + pd.offsets.MonthBegin(1)).tz_convert(t.tz))
        out.append((t, u))
        t = u
    return out


def read_hourly(client: InfluxClient, refs: list[PointRef], start: pd.Timestamp, end: pd.Timestamp,
                retention_policy: str = "raw", workers: int = 2,
                adjustments: Adjustments | None = None) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    """Bulk read for long recalculations: consumption per point and hour in [start, end).

    Counters: the first reading of every hour, by server-side ``first()``, taken as the
    reading at the hour (exact when readings fall on the hour, as 15-minute meter data does;
    a few seconds off with live 1-5 s collection). Rate points: the hour's mean rate × 1 h.
    The range is read as month queries, ``workers`` at a time, as CSV.

    The hours this shortcut cannot account exactly are returned, for the caller to recompute
    from every reading (:func:`quantities`): a rollover, reset or backward step between the
    hourly readings, consumption above the meter's capacity, a replacement, confirmation,
    correction or open quarantine (``adjustments``), and every hour in which a counter event was
    seen before, by the exact path (``acc_point`` events) or by a collector (``data_quality``
    counter events): a drop inside an hour does not show in its first readings. (Asking the
    database for each hour's last, smallest and largest reading as well would find those
    directly, but costs three more scans of the raw data: docs/benchmarks.md.)

    Returns
    -------
    (pandas.DataFrame, list of pandas.Timestamp)
        Columns ``period``, ``point``, ``quantity``, like :func:`quantities`; and the starts of
        the hours (Asia/Shanghai) to recompute exactly.
    """
    start = pd.Timestamp(start).tz_convert("UTC")
    end = pd.Timestamp(end).tz_convert("UTC")
    results = _hourly_frames(client, refs, start, end, retention_policy, workers)
    by_id = {r.id: r for r in refs}
    frames, flagged = [], set()
    counters = pd.concat([df for f, df in results if f == "total" and not df.empty] or [pd.DataFrame()])
    if not counters.empty:
        long, bad = _hourly_counters(counters, by_id, start, end)
        frames.append(long)
        flagged |= bad
    rates = pd.concat([df for f, df in results if f == "rate" and not df.empty] or [pd.DataFrame()])
    if not rates.empty:
        rates["point"] = rates["tags"].str.slice(len("point="))
        rates["period"] = pd.to_datetime(rates["time"], unit="ns", utc=True).dt.tz_convert("Asia/Shanghai")
        frame = rates.rename(columns={"v": "quantity"})[["period", "point", "quantity"]]  # mean rate × 1 h
        limit = np.array([consumption_limit(rated_capacity(by_id[p].meter), 1.0) for p in frame["point"]])
        flagged |= set(frame["period"][frame["quantity"].to_numpy() > limit])
        frames.append(frame)
    flagged |= _adjusted_hours(adjustments, by_id, start, end)
    flagged |= _evented_hours(client, refs, start, end, retention_policy)
    if not frames:
        empty = pd.DataFrame({"period": pd.Series(dtype="datetime64[ns, Asia/Shanghai]"),
                              "point": pd.Series(dtype=object), "quantity": pd.Series(dtype=float)})
        return empty, sorted(flagged)
    return pd.concat(frames, ignore_index=True), sorted(flagged)


def _hourly_frames(client: InfluxClient, refs: list[PointRef], start: pd.Timestamp, end: pd.Timestamp,
                   retention_policy: str, workers: int) -> list[tuple[str, pd.DataFrame]]:
    """The hourly aggregates of :func:`read_hourly`, as (field, CSV frame) per month query."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    aggregates = {"total": 'first("total") AS "v"', "rate": 'mean("rate") AS "v"'}
    jobs = []
    for field, select in aggregates.items():
        subset = [r for r in refs if (r.point.kind is Kind.counter) == (field == "total")]
        for src, where in _sources(client, subset, retention_policy):
            for a, b in _month_chunks(start, end):
                upper = "<=" if field == "total" else "<"  # a counter also needs the reading closing the range
                jobs.append((field, f"SELECT {select} FROM {src} WHERE {where} AND time >= {_ts(a)} "
                                    f'AND time {upper} {_ts(b)} GROUP BY time(1h), "point" fill(none)'))

    def run(job: tuple[str, str]) -> tuple[str, pd.DataFrame]:
        field, q = job
        payload = client.query_csv(q, epoch="ns")
        df = pd.read_csv(io.BytesIO(payload)) if payload.strip() else pd.DataFrame(columns=["tags", "time", "v"])
        return field, df

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(run, jobs))


def _hourly_counters(counters: pd.DataFrame, by_id: dict[str, PointRef], start: pd.Timestamp,
                     end: pd.Timestamp) -> tuple[pd.DataFrame, set[pd.Timestamp]]:
    """Hourly consumption from the first reading of each hour, and the hours it cannot be trusted for."""
    counters["point"] = counters["tags"].str.slice(len("point="))
    counters = counters.drop_duplicates(["time", "point"])

    first = counters.pivot(index="time", columns="point", values="v").sort_index()
    first.index = pd.DatetimeIndex(pd.to_datetime(first.index, unit="ns", utc=True)).tz_convert("Asia/Shanghai")
    refs = [by_id[p] for p in first.columns]
    moduli = np.array([canonical_modulus(r) or np.nan for r in refs], dtype=float)
    capacity = np.array([rated_capacity(r.meter) for r in refs])
    steps = np.array([register_step(r) for r in refs])
    hourly, events = counter_deltas_wide(first, moduli, capacity, steps)
    hours = np.diff(first.index.as_unit("ns").asi8)[:, None] / 3.6e12  # a bridged gap may deliver in proportion
    limits = consumption_limit(capacity[None, :], hours, steps[None, :])
    with np.errstate(invalid="ignore"):
        bad = (events.to_numpy() != 0) | (hourly.to_numpy() > limits)
    flagged_rows = np.flatnonzero(bad.any(axis=1))
    # the interval from one hour's first reading to the next one's touches both hours
    flagged = {hourly.index[i] for i in flagged_rows} | {hourly.index[i] + pd.Timedelta(hours=1) for i in flagged_rows}
    hourly = hourly[(hourly.index >= start) & (hourly.index < end)]
    hourly.index.name = "period"
    long = hourly.reset_index().melt(id_vars="period", var_name="point", value_name="quantity").dropna()
    return long, {h for h in flagged if start <= h < end}


def _evented_hours(client: InfluxClient, refs: list[PointRef], start: pd.Timestamp, end: pd.Timestamp,
                   retention_policy: str) -> set[pd.Timestamp]:
    """Hours in [start, end) with a counter event already seen: ``acc_point`` hours the exact path
    counted events in, and ``data_quality`` counter events the collectors recorded."""
    ids = {r.id for r in refs}
    park = refs[0].park_id if refs else ""
    rng = f"time >= {_ts(start)} AND time < {_ts(end)}"
    statements = [
        f'SELECT "events", "point" FROM "{client.database}"."accounting"."acc_point" WHERE "park" = \'{park}\' '
        f"AND \"period\" = 'hour' AND \"events\" > 0 AND {rng}",
        f'SELECT "count", "point" FROM "{client.database}"."{retention_policy}"."data_quality" '
        f"WHERE \"park\" = '{park}' AND \"reason\" =~ /^counter_/ AND {rng}"]
    out: set[pd.Timestamp] = set()
    for q in statements:
        try:
            series = client.series(q, epoch="ns")
        except InfluxError as exc:  # no derived series or no collector events yet (a new database)
            if exc.retryable:
                raise
            continue
        for ser in series:
            col = ser["columns"].index("point")
            for row in ser["values"]:
                if row[col] in ids:  # the reading interval it ends may have started in the hour before
                    hour = hour_floor(pd.Timestamp(row[0], unit="ns", tz="UTC"))
                    out |= {hour, hour - pd.Timedelta(hours=1)}
    return out


def _adjusted_hours(adjustments: Adjustments | None, by_id: dict[str, PointRef], start: pd.Timestamp,
                    end: pd.Timestamp) -> set[pd.Timestamp]:
    """Hours in [start, end) touched by a replacement, confirmation or correction of a point in ``by_id``."""
    out: set[pd.Timestamp] = set()
    if adjustments is None:
        return out
    for pid, adj in adjustments.points.items():
        if pid not in by_id:
            continue
        for a, b in adj.ranges():
            first = max(hour_floor(a) - pd.Timedelta(hours=1), hour_floor(start))  # the reading before it too
            last = min(hour_floor(b), hour_floor(end - pd.Timedelta(1, "ns")))
            out |= set(pd.date_range(first, last, freq="h")) if first <= last else set()
    return out
