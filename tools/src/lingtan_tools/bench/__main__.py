"""``make bench``: run the benchmarks and print a Markdown report for docs/benchmarks.md.

Usage: ``python -m lingtan_tools.bench [--quick] [--only ingest,mqtt,opcua,modbus,accounting,analysis,proxy] [--out FILE]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

import psutil


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def run_ingest(quick: bool) -> list[dict]:
    from lingtan_tools.bench.ingest import bench_refs, ingest_rounds
    from lingtan_tools.bench.stack import bench_stack

    refs = bench_refs(500)  # 1,000 points
    seconds = 200 if quick else 1000  # 200k / 1M points
    rounds = 1 if quick else 5
    with bench_stack() as stack:
        raw, path = ingest_rounds(stack, refs, seconds, rounds)
    ratio = path["points_per_s"] / raw["points_per_s"]
    return [
        {"benchmark": "InfluxDB raw write ceiling (pre-encoded line protocol, best of 4 configurations, "
         f"median of {rounds} rounds)",
         "result": f"{raw['points_per_s']:,.0f} points/s",
         "detail": f"{raw['points']:,} points per round, {raw['stored']:,} stored; best configuration: "
         f"{raw['writers']} writer(s), {raw['batch']:,}-line batches, gzip {'on' if raw['gzip'] else 'off'}; "
         f"rounds {raw['all']}",
         "target": "reference"},
        {"benchmark": f"collector normalise-and-write path (PointProcessor + WAL sink, median of {rounds} rounds "
         "interleaved with the ceiling's)",
         "result": f"{path['points_per_s']:,.0f} points/s ({ratio:.0%} of ceiling)",
         "detail": f"{path['points']:,} points per round, {path['stored']:,} stored; rounds {path['all']}",
         "target": "≥ 70 % of ceiling and ≥ 100,000 points/s",
         "pass": ratio >= 0.7 and path["points_per_s"] >= 100_000},
    ]


def run_accounting(quick: bool, skip_influxql: bool = False) -> list[dict]:
    from lingtan_tools.bench.accounting import current_hour, influxql_path, lingtan_path, write_year
    from lingtan_tools.bench.stack import bench_stack

    meters, days = (50, 14) if quick else (1000, 365)
    with bench_stack() as stack:
        stack.fresh_database("bench_acc")
        wrote = write_year(stack, "bench_acc", meters, days)
        ours = lingtan_path(stack, "bench_acc", meters, days)
        ref = ({"seconds": float("nan"), "park_tce": float("nan"), "park_tco2": float("nan"),
                "unfinished": "not run (--skip-influxql)"} if skip_influxql
               else influxql_path(stack, "bench_acc", meters, days))
        hour = current_hour(stack)
    agree = abs(ours["park_tce"] - ref["park_tce"]) <= 1e-6 * max(1.0, abs(ref["park_tce"]))
    ref_text = (f"{ref['seconds']:.1f} s" if not ref["unfinished"] else
                f"did not finish: one statement ran past the {ref['seconds']:.0f} s mark ({ref['unfinished'][:80]})")
    return [
        {"benchmark": f"accounting, bulk: {days} days of 15-minute counters for {wrote['meters']:,} meters "
         f"({wrote['points']:,} points) → hourly, daily, monthly tce and CO₂ per meter, enterprise and park",
         "result": f"{ours['seconds']:.1f} s (InfluxQL in the database: {ref_text})",
         "target": "≤ 60 s and no slower than InfluxQL" if not quick else "smoke",
         "pass": ours["seconds"] <= 60 and (skip_influxql or ours["seconds"] <= ref["seconds"]),
         "detail": f"Lingtan: read {ours['read_seconds']:.1f} s ({ours['rows_read']:,} hourly readings as CSV), "
         f"compute {ours['seconds'] - ours['read_seconds']:.1f} s; park total {ours['park_tce']:,.3f} tce, "
         f"{ours['park_tco2']:,.3f} tCO₂; InfluxQL {ref['park_tce']:,.3f} tce "
         f"({'agrees' if agree else 'unfinished' if ref['unfinished'] else 'DIFFERS'}); "
         f"data written at {wrote['points_per_s']:,.0f} points/s"},
        {"benchmark": "accounting, incremental: the demo park's current hour (every counter at a 2 s cadence)",
         "result": f"{hour['median_s']:.2f} s median, {hour['max_s']:.2f} s max",
         "target": "≤ 1 s", "pass": hour["max_s"] <= 1.0,
         "detail": f"{hour['points']} counter points, {hour['readings']:,} readings in InfluxDB; "
         "ParkCalculator.run_hours (read, boundary, tce, CO₂, flows, write)"},
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lingtan_tools.bench")
    ap.add_argument("--quick", action="store_true", help="smaller runs (for a smoke test)")
    ap.add_argument("--only", default="ingest,mqtt,opcua,modbus,accounting,analysis,proxy,forecast")
    ap.add_argument("--out", default="var/bench/latest.md")
    ap.add_argument("--skip-influxql", action="store_true",
                    help="accounting: do not run the (slow) InfluxQL reference aggregation")
    args = ap.parse_args(argv)
    wanted = set(args.only.split(","))
    rows: list[dict] = []
    if "ingest" in wanted:
        rows += run_ingest(args.quick)
    if "accounting" in wanted:
        rows += run_accounting(args.quick, args.skip_influxql)
    if "analysis" in wanted:
        from lingtan_tools.bench.analysis import run_analysis

        rows += run_analysis(args.quick)
    if "forecast" in wanted:
        from lingtan_tools.bench.forecast import run_forecast

        rows += run_forecast(args.quick)
    if "proxy" in wanted:
        from lingtan_tools.bench.proxy import run_proxy

        rows += run_proxy(args.quick)
    protocol_benches = {"mqtt", "opcua", "modbus"} & wanted
    if protocol_benches:
        from lingtan_tools.bench.protocols import run_protocols

        rows += run_protocols(sorted(protocol_benches), args.quick)
    today = dt.date.today().isoformat()
    lines = [f"### {today} — {machine()}", "", "| benchmark | result | target | pass | detail |", "|---|---|---|---|---|"]
    for r in rows:
        ok = "" if "pass" not in r else ("yes" if r["pass"] else "**no**")
        lines.append(f"| {r['benchmark']} | {r['result']} | {r['target']} | {ok} | {r['detail']} |")
    report = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1, ensure_ascii=False, default=str))
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
