"""Smoke test of the analysis benchmark (lingtan_tools.bench.analysis) at a tiny size.

The synthetic accounted series must be what the calc-service reads: its analyses and its monthly
report answer from them with the numbers that were written. Timings belong to ``make bench``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lingtan.park.loader import parse_park
from lingtan.settings import Settings
from lingtan_calc.service.app import create_app
from lingtan_tools.bench.analysis import RP, park_yaml, write_year
from lingtan_tools.bench.stack import bench_stack


def test_bench_series_are_what_the_calc_service_reads(tmp_path: Path) -> None:
    park_file = tmp_path / "anabench.yaml"
    park_file.write_text(park_yaml(20, n_enterprises=2, units_per_enterprise=2), encoding="utf-8")
    park = parse_park(park_file.read_text(encoding="utf-8"), park_file)
    with bench_stack() as stack:
        client = stack.fresh_database("bench_ana")
        wrote = write_year(stack, "bench_ana", park, days=59)  # January and February
        assert wrote["lines"] > 0
        settings = Settings(state_dir=tmp_path, influx_url=stack.influx.url, influx_db="bench_ana",
                            influx_user=stack.user, influx_password=stack.password, park_file=park_file)
        app = create_app(settings, park=park, client=stack.client("bench_ana"), start_scheduler=False)
        c = app.test_client()
        feb = "start=2025-02-01&end=2025-03-01"
        month_tce = client.rows(f'SELECT sum("tce") FROM "bench_ana"."{RP}"."acc_energy" WHERE "entity" = \'park\' '
                                "AND \"period\" = 'month' AND time >= '2025-01-31T16:00:00Z' AND time < '2025-02-28T16:00:00Z'")
        structure = c.get(f"/api/v1/analysis/structure?entity=park&{feb}").json
        assert structure["total_tce"] == pytest.approx(month_tce[0]["sum"])
        compare = c.get(f"/api/v1/analysis/compare?entity=park&{feb}&base=previous").json
        assert compare["base_start"].startswith("2025-01-01") and compare["total"]["base"] > 0
        pareto = c.get(f"/api/v1/analysis/pareto?entity=park&{feb}&level=unit").json
        assert len(pareto["rows"]) == 4 and sum(r["value"] for r in pareto["rows"]) == pytest.approx(structure["total_tce"])
        r = c.post("/api/v1/reports", json={"entity": "park", "kind": "month", "start": "2025-02-01"})
        assert r.status_code == 201, r.json
