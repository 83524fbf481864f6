"""Accounting benchmarks (issue #3 §6).

1. **Bulk year**: one year of 15-minute counter readings for 1,000 meters (35 M points) in
   InfluxDB → hourly, daily and monthly tce and CO₂ per meter, enterprise and park, by the
   calc-service's code (its bulk read :func:`lingtan_calc.adapters.metered.read_hourly`, then the factor
   library's coefficients per carrier and day, vectorised), against the same aggregation done
   by InfluxQL in the database (``non_negative_difference(first())`` per hour, nested
   ``sum()`` per day and month, constant coefficients). Both read through the v1 API as CSV.
2. **Current hour**: the demo park's current hour (every counter point at a 2 s cadence)
   recomputed by :meth:`ParkCalculator.run_hours`, as the scheduler does every minute.
"""

from __future__ import annotations

import datetime as dt
import io
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from lingtan.influxdb import InfluxClient, InfluxError
from lingtan.park.carriers import Carrier
from lingtan.park.index import iter_points
from lingtan.park.loader import parse_park
from lingtan.series import PointEncoder
from lingtan_calc.adapters.metered import read_hourly
from lingtan_calc.core.accounting.consumption import period_starts
from lingtan_calc.core.accounting.convert import (
    AccountingOptions,
    coal_equivalent,
    combustion_factor,
    grid_factor,
    heat_factor,
)
from lingtan_calc.core.accounting.factors import FactorLibrary, load_factor_file
from lingtan_tools.bench.stack import BenchStack

TZ = "Asia/Shanghai"
YEAR = 2025
#: share of the meters per carrier, and a typical hourly use [canonical unit per hour]
MIX = ((Carrier.electricity, 0.80, 400.0), (Carrier.natural_gas, 0.15, 60.0), (Carrier.steam, 0.05, 1.5))
UNITS = {Carrier.electricity: "kWh", Carrier.natural_gas: "m3", Carrier.steam: "t"}


def bulk_park_yaml(n_meters: int, n_enterprises: int = 10) -> str:
    """A park of ``n_meters`` single-counter meters spread over ``n_enterprises`` enterprises."""
    carriers = []
    for carrier, share, _ in MIX:
        carriers += [carrier] * max(1, round(n_meters * share))
    carriers = carriers[:n_meters]
    ents = []
    per = -(-n_meters // n_enterprises)
    for e in range(n_enterprises):
        meters = []
        for i in range(e * per, min(n_meters, (e + 1) * per)):
            c = carriers[i]
            role = ", role: consumption" if c is Carrier.electricity else ""
            meters.append(f"""
          - id: am-{i:04d}
            name: meter {i}
            carrier: {c.value}
            device: gw
            points:
              - {{id: am-{i:04d}.total, kind: counter, unit: {UNITS[c]}{role}, mqtt: {{topic: acc/{i}, json_path: total}}}}""")
        if meters:
            ents.append(f"""
  - id: be{e:02d}
    name: enterprise {e}
    credit_code: 91320214MA20EN001H
    industry_code: C3982
    units:
      - id: bu{e:02d}
        name: unit {e}
        meters:{''.join(meters)}""")
    return f"""
park: {{id: accbench, name: accounting bench, province: 江苏, grid_region: east_china,
        location: {{latitude: 31.49, longitude: 120.31}}}}
devices:
  - {{id: gw, protocol: mqtt}}
enterprises:{''.join(ents)}
"""


def write_year(stack: BenchStack, db: str, n_meters: int, days: int, seed: int = 7) -> dict[str, float]:
    """Write ``days`` days of 15-minute counter readings (plus the closing reading) [points/s]."""
    park = parse_park(bulk_park_yaml(n_meters), Path("<accbench>"))
    refs = iter_points(park)
    enc = PointEncoder(refs)
    prefixes = [enc.prefix(r.id) for r in refs]
    hourly = np.array([next(h for c, _, h in MIX if c is r.carrier) for r in refs])
    rng = np.random.default_rng(seed)
    level = hourly * rng.uniform(0.5, 1.5, len(refs))
    counters = rng.uniform(1e3, 1e6, len(refs))
    start = pd.Timestamp(f"{YEAR}-01-01", tz=TZ)
    client = stack.client(db)
    client.gzip_writes = False
    lock = threading.Lock()
    written = [0]

    def write(lines: list[str]) -> None:
        c = stack.client(db)
        c.gzip_writes = False
        c.write_lines(lines)
        with lock:
            written[0] += len(lines)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        futures = []
        for d in range(days + 1):
            steps = 96 if d < days else 1  # the last "day" is the closing reading at midnight
            times = start + pd.Timedelta(days=d) + pd.to_timedelta(np.arange(steps) * 15, unit="min")
            hours = times.hour.to_numpy()
            shape = 0.6 + 0.4 * np.sin((hours[:, None] - 6) / 24 * 2 * np.pi)  # day/night profile
            use = level[None, :] * shape * 0.25 * rng.uniform(0.8, 1.2, (steps, len(refs)))
            values = counters[None, :] + np.cumsum(use, axis=0) - use[0]
            counters = values[-1] + use[-1]
            ns = times.as_unit("ns").asi8.tolist()
            vals = values.tolist()  # Python floats: repr() is line protocol
            lines = [f"{prefixes[m]}{vals[k][m]!r} {ns[k]}" for k in range(steps) for m in range(len(refs))]
            for i in range(0, len(lines), 50_000):
                futures.append(pool.submit(write, lines[i:i + 50_000]))
            if len(futures) > 8:
                futures.pop(0).result()
        for f in futures:
            f.result()
    elapsed = time.perf_counter() - t0
    return {"points": written[0], "seconds": elapsed, "points_per_s": written[0] / elapsed, "meters": len(refs)}


def _read_csv(payload: bytes) -> pd.DataFrame:
    if not payload.strip():
        return pd.DataFrame(columns=["name", "tags", "time"])
    return pd.read_csv(io.BytesIO(payload))


def lingtan_path(stack: BenchStack, db: str, n_meters: int, days: int) -> dict[str, object]:
    """The calc-service's code: hourly per meter, then enterprises, days and months."""
    park = parse_park(bulk_park_yaml(n_meters), Path("<accbench>"))
    refs = iter_points(park)
    lib, options = FactorLibrary.shipped(), AccountingOptions(grid_region="east_china")
    client = stack.client(db)
    start = pd.Timestamp(f"{YEAR}-01-01", tz=TZ)
    end = start + pd.Timedelta(days=days)
    t0 = time.perf_counter()
    # the calc-service's bulk read: first reading per hour and point, month queries two at a time
    q, flagged = read_hourly(client, refs, start, end, retention_policy="autogen", workers=2)
    t_read = time.perf_counter() - t0
    by_id = {r.id: r for r in refs}
    hourly = q.pivot(index="period", columns="point", values="quantity").sort_index()
    rows_read = len(q)
    days_idx = hourly.index.normalize()
    tce_coef = np.zeros(hourly.shape)
    co2_coef = np.zeros(hourly.shape)
    carriers = np.array([by_id[c].carrier.value for c in hourly.columns])
    for day in np.unique(days_idx):
        rows = days_idx == day
        d = pd.Timestamp(day).date()
        for carrier in np.unique(carriers):
            c = Carrier(carrier)
            cols = carriers == carrier
            tce = coal_equivalent(c, d, lib, options).value
            if c is Carrier.electricity:
                co2 = grid_factor(d, lib, options.grid_region, options.grid_basis).value
            elif c is Carrier.steam:
                co2 = heat_factor(c, d, lib).value
            else:
                co2 = combustion_factor(c, d, lib).value
            tce_coef[np.ix_(rows, cols)] = tce
            co2_coef[np.ix_(rows, cols)] = co2
    q_arr = hourly.to_numpy()
    meter_tce, meter_co2 = q_arr * tce_coef, q_arr * co2_coef
    ent_of = [by_id[c].enterprise.id for c in hourly.columns]
    ents = sorted(set(ent_of))
    member = np.zeros((len(ent_of), len(ents)))
    member[np.arange(len(ent_of)), [ents.index(e) for e in ent_of]] = 1.0
    out = {}
    for name, arr in (("tce", meter_tce), ("tco2", meter_co2)):
        per_ent = pd.DataFrame(arr @ member, index=hourly.index, columns=ents)
        per_ent["park"] = per_ent.sum(axis=1)
        out[f"hour_{name}"] = per_ent
        out[f"day_{name}"] = per_ent.groupby(per_ent.index.normalize()).sum()
        out[f"month_{name}"] = per_ent.groupby(period_starts(per_ent.index, "month")).sum()
        out[f"meter_hour_{name}"] = arr
    elapsed = time.perf_counter() - t0
    # synthetic steady meters: no hour needs the exact path (the calc-service would recompute them)
    return {"seconds": elapsed, "read_seconds": t_read, "rows_read": rows_read, "exact_hours": len(flagged),
            "park_tce": float(out["month_tce"]["park"].sum()), "park_tco2": float(out["month_tco2"]["park"].sum()),
            "results": out}


def influxql_path(stack: BenchStack, db: str, n_meters: int, days: int, timeout_s: float = 300.0) -> dict[str, object]:
    """The same aggregation by InfluxQL in the database, with constant coefficients."""
    park = parse_park(bulk_park_yaml(n_meters), Path("<accbench>"))
    carriers = sorted({r.carrier for r in iter_points(park)}, key=lambda c: c.value)
    lib, options = FactorLibrary.shipped(), AccountingOptions(grid_region="east_china")
    d = dt.date(YEAR, 6, 1)
    coef = {}
    for c in carriers:
        co2 = (grid_factor(d, lib, "east_china", "average").value if c is Carrier.electricity else
               heat_factor(c, d, lib).value if c is Carrier.steam else combustion_factor(c, d, lib).value)
        coef[c] = (coal_equivalent(c, d, lib, options).value, co2)
    client = stack.client(db)
    client.timeout_s = timeout_s
    start = pd.Timestamp(f"{YEAR}-01-01", tz=TZ)
    end = start + pd.Timedelta(days=days)
    t0 = time.perf_counter()
    park_tce = park_co2 = 0.0
    try:
        for c in carriers:
            park_tce, park_co2 = _influxql_carrier(client, db, c, coef[c], start, end, park_tce, park_co2)
    except InfluxError as exc:  # a statement that does not finish within timeout_s
        return {"seconds": time.perf_counter() - t0, "park_tce": float("nan"), "park_tco2": float("nan"),
                "unfinished": f"{exc}"[:200]}
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "park_tce": park_tce, "park_tco2": park_co2, "unfinished": ""}


def _influxql_carrier(client: InfluxClient, db: str, c: Carrier, coefs: tuple[float, float], start: pd.Timestamp,
                      end: pd.Timestamp, park_tce: float, park_co2: float) -> tuple[float, float]:
    """Hourly per meter, hourly and daily per enterprise, monthly per enterprise, for one carrier."""
    k_tce, k_co2 = coefs
    src = f'"{db}"."autogen"."{c.value}"'
    where = f"time >= '{start.isoformat()}' AND time <= '{end.isoformat()}'"
    inner = (f'SELECT non_negative_difference(first("total")) * {k_tce!r} AS "tce", '
             f'non_negative_difference(first("total")) * {k_co2!r} AS "tco2" FROM {src} WHERE {where} '
             f'GROUP BY time(1h), "point", "enterprise" fill(none)')
    _read_csv(client.query_csv(inner, epoch="ns"))  # hourly per meter
    _read_csv(client.query_csv(f'SELECT sum("tce") AS "tce", sum("tco2") AS "tco2" FROM ({inner}) '
                               f'WHERE {where} GROUP BY time(1h), "enterprise" fill(none)', epoch="ns"))
    # difference() stamps hour H's consumption at H + 1 h: days are buckets offset by an hour
    _read_csv(client.query_csv(f'SELECT sum("tce") AS "tce", sum("tco2") AS "tco2" FROM ({inner}) '
                               f"WHERE {where} GROUP BY time(1d, 1h), \"enterprise\" fill(none) tz('{TZ}')",
                               epoch="ns"))
    m = start
    while m < end:
        m_end = min(end, m + pd.offsets.MonthBegin(1))
        # the outer range is pushed into the subquery: [m, m_end] gives differences stamped
        # m + 1 h .. m_end, exactly the month's hours
        df = _read_csv(client.query_csv(
            f'SELECT sum("tce") AS "tce", sum("tco2") AS "tco2" FROM ({inner}) '
            f"WHERE time >= '{m.isoformat()}' AND time <= '{m_end.isoformat()}' GROUP BY \"enterprise\"",
            epoch="ns"))
        if not df.empty:
            park_tce += float(df["tce"].sum())
            park_co2 += float(df["tco2"].sum())
        m = m_end
    return park_tce, park_co2


def current_hour(stack: BenchStack, rounds: int = 5) -> dict[str, float]:
    """The demo park's current hour recomputed (as every minute), median of ``rounds``."""
    from lingtan.park import load_park
    from lingtan.settings import DEMO_PARK
    from lingtan_calc.service.engine import ParkCalculator

    park = load_park(DEMO_PARK)
    client = stack.fresh_database("bench_demo")
    client.query('CREATE RETENTION POLICY "raw" ON "bench_demo" DURATION INF REPLICATION 1 DEFAULT', database="")
    client.query('CREATE RETENTION POLICY "accounting" ON "bench_demo" DURATION INF REPLICATION 1', database="")
    refs = [r for r in iter_points(park) if r.point.kind.value == "counter"]
    enc = PointEncoder(refs)
    hour = pd.Timestamp.now(tz=TZ).floor("h")
    times = pd.date_range(hour - pd.Timedelta(minutes=5), hour + pd.Timedelta(minutes=59), freq="2s")
    rng = np.random.default_rng(3)
    base = rng.uniform(100, 1000, len(refs))
    lines = [enc.encode(r.id, float(base[i] + k * 0.01), pd.Timestamp(t).as_unit("ns").value)
             for k, t in enumerate(times) for i, r in enumerate(refs)]
    for i in range(0, len(lines), 50_000):
        client.write_lines(lines[i:i + 50_000])
    lib = FactorLibrary.shipped().with_overrides(load_factor_file(DEMO_PARK.with_suffix(".factors.yaml")))
    calc = ParkCalculator(park, client, lib)
    secs = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        calc.run_hours(hour, hour + pd.Timedelta(hours=1), "bench")
        secs.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(secs), "max_s": max(secs), "points": len(refs), "readings": len(lines)}
