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

from lingtan.calc.consumption import counter_deltas, counter_deltas_wide, rate_deltas, spread
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


def _month_chunks(start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    out, t = [], pd.Timestamp(start)
    while t < end:
        u = min(pd.Timestamp(end), (t.tz_convert("Asia/Shanghai") + pd.offsets.MonthBegin(1)).tz_convert(t.tz))
        out.append((t, u))
        t = u
    return out


def read_hourly(client: InfluxClient, refs: list[PointRef], start: pd.Timestamp, end: pd.Timestamp,
                retention_policy: str = "raw", workers: int = 2) -> pd.DataFrame:
    """Bulk read for long recalculations: consumption per point and hour in [start, end).

    Counters: the first reading of every hour, by server-side ``first()``, taken as the
    reading at the hour (exact when readings fall on the hour, as 15-minute meter data does;
    a few seconds off with live 1-5 s collection). Rate points: the hour's mean rate × 1 h.
    The range is read as month queries, ``workers`` at a time, as CSV.

    Returns columns ``period``, ``point``, ``quantity``, like :func:`quantities`.
    """
    import io
    from concurrent.futures import ThreadPoolExecutor

    start = pd.Timestamp(start).tz_convert("UTC")
    end = pd.Timestamp(end).tz_convert("UTC")
    jobs = []
    for field, agg in (("total", "first"), ("rate", "mean")):
        subset = [r for r in refs if (r.point.kind is Kind.counter) == (field == "total")]
        for src, where in _sources(client, subset, retention_policy):
            for a, b in _month_chunks(start, end):
                upper = "<=" if field == "total" else "<"  # a counter also needs the reading closing the range
                jobs.append((field, f'SELECT {agg}("{field}") AS "v" FROM {src} WHERE {where} AND time >= {_ts(a)} '
                                    f'AND time {upper} {_ts(b)} GROUP BY time(1h), "point" fill(none)'))

    def run(job: tuple[str, str]) -> tuple[str, pd.DataFrame]:
        field, q = job
        payload = client.query_csv(q, epoch="ns")
        df = pd.read_csv(io.BytesIO(payload)) if payload.strip() else pd.DataFrame(columns=["tags", "time", "v"])
        return field, df

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(run, jobs))
    frames = []
    by_id = {r.id: r for r in refs}
    counters = pd.concat([df for f, df in results if f == "total" and not df.empty] or [pd.DataFrame()])
    if not counters.empty:
        counters["point"] = counters["tags"].str.slice(len("point="))
        wide = counters.drop_duplicates(["time", "point"]).pivot(index="time", columns="point", values="v").sort_index()
        wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index, unit="ns", utc=True)).tz_convert("Asia/Shanghai")
        moduli = np.array([canonical_modulus(by_id[p]) or np.nan for p in wide.columns], dtype=float)
        hourly = counter_deltas_wide(wide, moduli)
        hourly = hourly[(hourly.index >= start) & (hourly.index < end)]
        hourly.index.name = "period"
        long = hourly.reset_index().melt(id_vars="period", var_name="point", value_name="quantity").dropna()
        frames.append(long)
    rates = pd.concat([df for f, df in results if f == "rate" and not df.empty] or [pd.DataFrame()])
    if not rates.empty:
        rates["point"] = rates["tags"].str.slice(len("point="))
        rates["period"] = pd.to_datetime(rates["time"], unit="ns", utc=True).dt.tz_convert("Asia/Shanghai")
        frames.append(rates.rename(columns={"v": "quantity"})[["period", "point", "quantity"]])  # mean rate × 1 h
    if not frames:
        return pd.DataFrame({"period": pd.Series(dtype="datetime64[ns, Asia/Shanghai]"),
                             "point": pd.Series(dtype=object), "quantity": pd.Series(dtype=float)})
    return pd.concat(frames, ignore_index=True)
