"""Smoke test of the forecast benchmark's simulated history (lingtan_tools.bench.forecast).

The park aggregate it backtests must be a load a 25 MW grid connection and the park's own plants
could deliver, with the working-week shape the models are meant to find. Timings and scores
belong to ``make bench``.
"""

from __future__ import annotations

from lingtan.workdays import is_workday
from lingtan_tools.bench.forecast import simulated_park_load


def test_simulated_park_load_is_a_plausible_working_week() -> None:
    load = simulated_park_load(14, end="2026-11-02")
    assert len(load) == 14 * 24 and load.index.freqstr == "h"
    assert load.min() > 0 and load.max() < 25_000 + 20_000  # grid connection + on-site generation [kW]
    daily = load.resample("D").mean()
    worked = is_workday(daily.index)
    assert daily[worked].mean() > 1.05 * daily[~worked].mean()  # shifts and offices rest at weekends
