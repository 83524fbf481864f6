"""Smoke test of the accounting benchmarks (lingtan_tools.bench.accounting) at a tiny size.

Checks that both bulk paths run against a real influxd and agree on the park's total, and
that the current-hour run works on the demo park; timings belong to ``make bench``.
"""

from __future__ import annotations

import pytest

from lingtan_tools.bench.accounting import current_hour, influxql_path, lingtan_path, write_year
from lingtan_tools.bench.stack import bench_stack


def test_bulk_paths_agree_and_current_hour_runs() -> None:
    with bench_stack() as stack:
        stack.fresh_database("bench_acc")
        wrote = write_year(stack, "bench_acc", n_meters=12, days=3)
        assert wrote["points"] == 12 * (3 * 96 + 1)
        ours = lingtan_path(stack, "bench_acc", 12, 3)
        ref = influxql_path(stack, "bench_acc", 12, 3)
        assert ours["park_tce"] > 0
        assert ours["park_tce"] == pytest.approx(ref["park_tce"], rel=1e-9)
        assert ours["park_tco2"] == pytest.approx(ref["park_tco2"], rel=1e-9)
        days = ours["results"]["day_tce"]
        assert len(days) == 3 and days["park"].sum() == pytest.approx(ours["park_tce"])
        hour = current_hour(stack, rounds=1)
        assert hour["median_s"] > 0 and hour["points"] > 100
