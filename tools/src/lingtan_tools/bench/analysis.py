"""Energy-analysis benchmark (docs/analysis.md; targets of the analysis issue, §4).

A year of accounted series for 1,000 meters in 100 units of 10 enterprises (the accounting
benchmark's park, with ten units per enterprise) is written to a private InfluxDB in the schema
the calc-service writes (``acc_energy``, ``acc_carrier``, ``acc_totals`` per hour, day and month;
docs/schema.md). Then the real calc-service and auth proxy run on it, and:

1. a period comparison (a month against the month before, by carrier) and a Pareto of the units
   (a month, by energy) are asked through the proxy's read API with a portal session, one request
   at a time: p95 latency against 0.3 s;
2. the park's monthly report is generated (XLSX and PDF) by the calc-service: the time against 10 s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lingtan_tools.bench.stack import BenchStack

TZ = "Asia/Shanghai"
YEAR = 2025
RP = "accounting"
#: carrier, share of the meters, mean use per hour [canonical unit], tce per unit: electricity 0.1229 kgce/kWh and
#: natural gas 1.2143 kgce/m3 (GB/T 2589-2020 Annex A, 当量值); steam at about 3.0 GJ/t × 34.12 kgce/GJ (a synthetic
#: series: a benchmark needs plausible magnitudes, not a particular plant's steam)
MIX = (("electricity", 0.80, 400.0, 0.1229e-3, "kWh"), ("natural_gas", 0.15, 60.0, 1.2143e-3, "m3"),
       ("steam", 0.05, 1.5, 0.1024, "t"))


def park_yaml(n_meters: int, n_enterprises: int = 10, units_per_enterprise: int = 10) -> str:
    """``n_meters`` single-counter meters in ``n_enterprises`` × ``units_per_enterprise`` units."""
    carriers = [c for c, share, *_ in MIX for _ in range(max(1, round(n_meters * share)))][:n_meters]
    units_total = n_enterprises * units_per_enterprise
    per_unit = -(-n_meters // units_total)
    ents = []
    for e in range(n_enterprises):
        units = []
        for u in range(units_per_enterprise):
            k = e * units_per_enterprise + u
            meters = "".join(f"""
              - id: am-{i:04d}
                name: meter {i}
                carrier: {carriers[i]}
                device: gw
                points:
                  - {{id: am-{i:04d}.total, kind: counter, unit: {dict((m[0], m[4]) for m in MIX)[carriers[i]]}{
                      ', role: consumption' if carriers[i] == 'electricity' else ''}, mqtt: {{topic: ana/{i}, json_path: total}}}}"""
                             for i in range(k * per_unit, min(n_meters, (k + 1) * per_unit)))
            if meters:
                units.append(f"""
          - id: bu{e:02d}-{u:02d}
            name: unit {e}-{u}
            meters:{meters}""")
        ents.append(f"""
  - id: be{e:02d}
    name: enterprise {e}
    credit_code: 91320214MA20EN001H
    industry_code: C3982
    units:{''.join(units)}""")
    return f"""
park: {{id: anabench, name: analysis bench, province: 江苏, grid_region: east_china,
        location: {{latitude: 31.49, longitude: 120.31}}}}
devices:
  - {{id: gw, protocol: mqtt}}
enterprises:{''.join(ents)}
"""


def _meters(park) -> pd.DataFrame:
    rows = [(e.id, u.id, m.id, m.carrier.value) for e in park.enterprises for u in e.units for m in u.meters]
    return pd.DataFrame(rows, columns=["enterprise", "unit", "meter", "carrier"])


def _lines(meters: pd.DataFrame, quantities: np.ndarray, times_ns: np.ndarray, period: str) -> list[str]:
    """acc_energy and acc_carrier lines for the meters (columns of ``quantities``) at ``times_ns`` (rows)."""
    coef = meters["carrier"].map({m[0]: m[3] for m in MIX}).to_numpy()
    unit = meters["carrier"].map({m[0]: m[4] for m in MIX}).to_numpy()
    tce = quantities * coef
    out = []
    for j, m in enumerate(meters.itertuples()):
        for entity in (m.enterprise, "park"):
            key = (f"acc_energy,carrier={m.carrier},enterprise={m.enterprise},entity={entity},flow=input,meter={m.meter},"
                   f"park=anabench,period={period},unit_id={m.unit},usage=production")
            out += [f"{key} quantity={float(q)!r},tce={float(t)!r} {ts}"
                    for q, t, ts in zip(quantities[:, j], tce[:, j], times_ns, strict=True)]
    frame = pd.DataFrame(tce, columns=meters["meter"])
    qty = pd.DataFrame(quantities, columns=meters["meter"])
    carrier_of = dict(zip(meters["meter"], meters["carrier"], strict=True))
    unit_of = dict(zip(meters["carrier"], unit, strict=True))
    for entity, cols in [*meters.groupby("enterprise")["meter"], ("park", meters["meter"])]:
        for carrier in meters["carrier"].unique():
            sel = [c for c in cols if carrier_of[c] == carrier]
            if not sel:
                continue
            q, t = qty[sel].sum(axis=1).to_numpy(), frame[sel].sum(axis=1).to_numpy()
            key = f"acc_carrier,carrier={carrier},entity={entity},park=anabench,period={period},unit={unit_of[carrier]}"
            out += [f"{key} quantity={float(a)!r},tce={float(b)!r} {ts}" for a, b, ts in zip(q, t, times_ns, strict=True)]
        total = frame[list(cols)].sum(axis=1).to_numpy()
        # CO₂ at a synthetic 2.6 tCO₂ per tce, so that the report has a carbon line to print
        key = f"acc_totals,basis=dangliang,entity={entity},park=anabench,period={period}"
        out += [f"{key} comprehensive_tce={float(v)!r},total_tco2={float(v) * 2.6!r} {ts}"
                for v, ts in zip(total, times_ns, strict=True)]
    return out


def write_year(stack: BenchStack, db: str, park, days: int, seed: int = 11) -> dict[str, float]:
    """Hourly rows for ``days`` days, and the days and months as their sums (as the calc-service rolls them up)."""
    client = stack.client(db)
    client.query(f'CREATE RETENTION POLICY "{RP}" ON "{db}" DURATION INF REPLICATION 1', database="")
    client.retention_policy = RP
    meters = _meters(park)
    rng = np.random.default_rng(seed)
    mean = meters["carrier"].map({m[0]: m[2] for m in MIX}).to_numpy()
    start = pd.Timestamp(f"{YEAR}-01-01", tz=TZ)
    hours = pd.date_range(start, periods=days * 24, freq="h")
    shape = 0.7 + 0.6 * np.sin(np.pi * (hours.hour.to_numpy() - 6) / 12).clip(0)  # a day shift
    t0, written = time.perf_counter(), 0
    for month_start in pd.date_range(start, hours[-1], freq="MS"):
        sel = (hours >= month_start) & (hours < month_start + pd.offsets.MonthBegin(1))
        q = np.outer(shape[sel], mean) * rng.uniform(0.8, 1.2, (int(sel.sum()), len(mean)))
        lines = _lines(meters, q, hours[sel].as_unit("ns").asi8, "hour")
        day_index = hours[sel].normalize()
        days_q = pd.DataFrame(q).groupby(day_index).sum()
        lines += _lines(meters, days_q.to_numpy(), pd.DatetimeIndex(days_q.index).as_unit("ns").asi8, "day")
        lines += _lines(meters, q.sum(axis=0, keepdims=True), np.array([month_start.value]), "month")
        for i in range(0, len(lines), 50_000):
            client.write_lines(lines[i:i + 50_000])
        written += len(lines)
    elapsed = time.perf_counter() - t0
    return {"lines": written, "seconds": elapsed, "lines_per_s": written / elapsed}


def _p95(samples: list[float]) -> float:
    return float(np.percentile(samples, 95))


def measure(sess, url: str, n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = sess.get(url, timeout=60)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
    return {"p50_s": statistics.median(times), "p95_s": _p95(times), "n": n, "bytes": len(r.content)}


def run_analysis(quick: bool) -> list[dict]:
    import requests

    from lingtan.park.loader import parse_park
    from lingtan_tools.bench.proxy import proxy_stack
    from lingtan_tools.bench.stack import bench_stack

    n_meters, days, n = (100, 62, 10) if quick else (1000, 365, 40)
    with bench_stack() as stack:
        stack.fresh_database("bench_ana")
        park_file = Path(stack.state_dir) / "anabench.yaml"
        park_file.write_text(park_yaml(n_meters), encoding="utf-8")
        park = parse_park(park_file.read_text(encoding="utf-8"), park_file)
        wrote = write_year(stack, "bench_ana", park, days)
        env = {"LINGTAN_INFLUX_URL": stack.influx.url, "LINGTAN_INFLUX_DB": "bench_ana",
               "LINGTAN_INFLUX_USER": stack.user, "LINGTAN_INFLUX_PASSWORD": stack.password,
               "LINGTAN_PARK_FILE": str(park_file), "LINGTAN_CALC_INTERVAL_S": "3600"}
        with proxy_stack(env) as st:
            sess = st["session"]
            month = "start=2025-01-01&end=2025-02-01" if quick else "start=2025-06-01&end=2025-07-01"
            compare_url = f"{st['base']}/api/v1/analysis/compare?entity=park&{month}&by=carrier&base=previous"
            pareto_url = f"{st['base']}/api/v1/analysis/pareto?entity=park&{month}&level=unit&metric=energy"
            measure(sess, compare_url, 2)  # warm up (TLS, pools, caches)
            compare = measure(sess, compare_url, n)
            pareto = measure(sess, pareto_url, n)
            plain = requests.Session()
            plain.trust_env = False
            report_times = []
            for _ in range(1 if quick else 3):
                t0 = time.perf_counter()
                r = plain.post(f"{st['calc']}/api/v1/reports", json={"entity": "park", "kind": "month",
                                                                     "start": month.split("&")[0][6:], "lang": "zh"},
                               timeout=300)
                report_times.append(time.perf_counter() - t0)
                r.raise_for_status()
            sizes = {row["format"]: row["size"] for row in r.json()["rows"]}
    target_q, target_r = 0.3, 10.0
    return [
        {"benchmark": f"analysis through the proxy: period comparison (a month against the previous, by carrier) over "
         f"{days} days × {n_meters:,} meters",
         "result": f"p95 {compare['p95_s'] * 1000:.0f} ms (p50 {compare['p50_s'] * 1000:.0f} ms)",
         "target": f"≤ {target_q * 1000:.0f} ms at p95" if not quick else "smoke", "pass": compare["p95_s"] <= target_q,
         "detail": f"{compare['n']} requests one at a time, session cookie, read API → calc-service → InfluxQL on the "
         f"monthly acc_energy rows; {wrote['lines']:,} derived lines written at {wrote['lines_per_s']:,.0f}/s"},
        {"benchmark": f"analysis through the proxy: Pareto of {len(park.enterprises) * 10} units by energy (a month)",
         "result": f"p95 {pareto['p95_s'] * 1000:.0f} ms (p50 {pareto['p50_s'] * 1000:.0f} ms)",
         "target": f"≤ {target_q * 1000:.0f} ms at p95" if not quick else "smoke", "pass": pareto["p95_s"] <= target_q,
         "detail": f"{pareto['n']} requests one at a time; answer {pareto['bytes']:,} bytes"},
        {"benchmark": "monthly report of the park (XLSX and PDF), generated by the calc-service",
         "result": f"{max(report_times):.1f} s max of {len(report_times)} ({statistics.median(report_times):.1f} s median)",
         "target": f"≤ {target_r:.0f} s" if not quick else "smoke", "pass": max(report_times) <= target_r,
         "detail": f"XLSX {sizes.get('xlsx', 0):,} B, PDF {sizes.get('pdf', 0):,} B; reads the month's hourly totals "
         "and bought energy (cost by band), the comparisons, the key consumers, the factors"},
    ]
