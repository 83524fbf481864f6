"""Smoke test of the end-to-end protocol benchmarks (lingtan_tools.bench.protocols).

Each protocol runs in a tiny configuration (a few hundred values per second, a 3 s window)
with every real process: influxd, mosquitto, the load generators and the collector. The test
only checks that each run produces a report row with numbers in it; performance targets
belong to ``make bench``, never to the test suite.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

from lingtan_tools.bench.protocols import bench_protocol, result_row
from lingtan_tools.bench.protocols_plans import BenchConfig
from lingtan_tools.bench.stack import bench_stack

_TIMING = {"window_s": 3.0, "warmup_s": 0.5, "grace_s": 2.5, "startup_timeout_s": 20.0}
TINY = {
    "mqtt": BenchConfig(rate=200, size=20, generators=1, **_TIMING),
    "opcua": BenchConfig(rate=100, size=25, generators=2, **_TIMING),  # two devices, 2 Hz per variable
    "modbus": BenchConfig(rate=4, size=2, **_TIMING),  # 2 unit ids x 2 requests per second
}


def test_each_protocol_bench_produces_a_row_with_numbers() -> None:
    # the three runs share one stack and run side by side to keep the test short
    with bench_stack(with_mqtt=True) as stack, ThreadPoolExecutor(len(TINY)) as pool:
        futures = {name: pool.submit(bench_protocol, stack, name, cfg) for name, cfg in TINY.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, res in results.items():
        assert not res.error, f"{name}: {res.error}\n" + "\n".join(res.warnings)
        row = result_row(res)
        assert {"benchmark", "result", "target", "detail", "pass"} <= set(row)
        assert isinstance(row["pass"], bool)
        assert isinstance(row["value"], float) and math.isfinite(row["value"]) and row["value"] > 0, row
        assert res.offered > 0 and res.latency.samples > 0 and math.isfinite(res.latency.p50_s), row
        assert res.rss_peak_mib > 0 and res.cpu["collector"] >= 0
        json.dumps(row, allow_nan=False)  # the report's JSON twin must stay strict JSON
