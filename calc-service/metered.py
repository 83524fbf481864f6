"""The metered path: raw counter readings in InfluxDB → consumption per point and period.

Reads only through the v1 API (InfluxQL on /query; DEVELOPERS.md decision 1). For a range
[start, end) it reads every counter reading of the boundary points in the range plus the
last reading before it and the first after it, so that the intervals crossing the range's
edges are split by time (:func:`lingtan.calc.consumption.spread`) rather than lost. Readings
come back per point (``GROUP BY "point"``) with epoch-nanosecond timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import pandas as pd

from lingtan.calc.consumption import counter_deltas, rate_deltas, spread
from lingtan.influxdb import InfluxClient
from lingtan.park.carriers import Kind
from lingtan.park.index import PointRef
from lingtan.simulate.codec import canonical_modulus

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


def quantities(readings: dict[str, pd.Series], refs: list[PointRef], period: str, start: pd.Timestamp,
               end: pd.Timestamp, max_gap: str = "15min") -> pd.DataFrame:
    """Consumption per point and ``period`` (hour, day, …) for periods starting in [start, end).

    Counter points give the differences of their readings; rate points (meters without a
    counter) their integral [rate unit × h = the counter unit].

    Returns columns ``period``, ``point``, ``quantity`` [canonical unit], ``events`` (count of
    rollovers, resets and gaps seen in the readings).
    """
    by_id = {r.id: r for r in refs}
    frames = []
    lo = pd.Timestamp(start).tz_convert("Asia/Shanghai")
    hi = pd.Timestamp(end).tz_convert("Asia/Shanghai")
    for pid, series in readings.items():
        ref = by_id.get(pid)
        if ref is None:
            continue
        if ref.point.kind is Kind.counter:
            deltas = counter_deltas(series, canonical_modulus(ref))
        else:  # a meter without a counter: integrate its rate; gaps longer than max_gap stay unknown
            deltas = rate_deltas(series, max_gap)
        per = spread(deltas, period)
        per = per[(per.index >= lo) & (per.index < hi)]
        if per.empty:
            continue
        frames.append(pd.DataFrame({"period": per.index, "point": pid, "quantity": per.to_numpy(),
                                    "events": int((deltas["event"] != "").sum())}))
    if not frames:
        return pd.DataFrame({"period": pd.Series(dtype="datetime64[ns, Asia/Shanghai]"),
                             "point": pd.Series(dtype=object), "quantity": pd.Series(dtype=float),
                             "events": pd.Series(dtype=int)})
    return pd.concat(frames, ignore_index=True)


def hour_floor(t: dt.datetime | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(t).tz_convert("Asia/Shanghai").floor("h")
