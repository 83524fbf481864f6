"""Property tests of the counter rules on one meter: whatever drops, replays, rollovers and replacements the
register goes through, no interval is negative or above what the meter's capacity could deliver, and the
exact events (rollovers, recorded replacements) lose nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lingtan.park.counters import consumption_limit, reset_floor
from lingtan.park.index import iter_points
from lingtan.park.loader import parse_park
from lingtan_calc.adapters.metered import point_deltas
from lingtan_calc.core.accounting.consumption import Replacement
from lingtan_calc.core.accounting.plausibility import PointAdjustments

CAPACITY = 100.0  # kW
MODULUS = 65536.0  # uint16 register, 1 kWh per count
PARK = f"""
park: {{id: t, name: t, province: 江苏, grid_region: east_china, location: {{latitude: 31.5, longitude: 120.3}}}}
devices: [{{id: plc, protocol: modbus}}]
enterprises:
  - id: e1
    name: e1
    credit_code: 91320214MA20EN001H
    industry_code: C3982
    units:
      - id: u1
        name: u1
        meters:
          - id: m1
            name: m1
            carrier: electricity
            device: plc
            capacity: {CAPACITY}
            points:
              - {{id: m1.total, kind: counter, unit: kWh, role: consumption, rollover: {MODULUS:.0f},
                 modbus: {{unit_id: 1, function: 3, address: 0, type: float32}}}}
"""
REF = iter_points(parse_park(PARK, Path("t.yaml")))[0]
EVENTS = ["none", "none", "none", "replay", "drop", "reset", "replacement"]
#: first readings, often a few kWh below the wrap so that the register rolls over in the sequence
START = st.one_of(st.floats(0.0, MODULUS - 1), st.floats(MODULUS - 200.0, MODULUS - 1e-3))

#: seconds between readings: the usual few minutes, and outages of hours to days
SECONDS = st.one_of(st.integers(1, 600), st.integers(600, 600), st.integers(3600, 3 * 86400))
step = st.tuples(SECONDS, st.floats(0.0, 1.0), st.sampled_from(EVENTS), st.floats(0.0, 1.0))


def simulate(steps, start_reading: float):
    """Register readings of a meter whose true use is ``load × capacity × dt``, with events injected.

    Returns (readings, replacements, true use per interval, allowed overcount [kWh]).
    """
    t0 = pd.Timestamp("2026-03-01T00:00Z")
    times, values, truth, swaps = [t0], [start_reading], [], []
    register, slack, elapsed = start_reading, 0.0, 0
    for seconds, load, event, x in steps:
        use = load * CAPACITY * seconds / 3600.0
        elapsed += seconds
        t = t0 + pd.Timedelta(seconds=elapsed)
        if event == "replacement":  # taken out at half the interval, a new register fitted near zero
            half = use / 2
            # the old register's final reading as it showed it (wrapped)
            swaps.append(Replacement(t - pd.Timedelta(seconds=seconds / 2), (register + half) % MODULUS, x * 5.0))
            register = x * 5.0 + (use - half)
        elif event == "reset":
            register = use * x  # restarted from zero somewhere inside the interval
            if values[-1] - register > MODULUS / 2:  # from near the top: as much a wrap as a reset
                slack += consumption_limit(CAPACITY, seconds / 3600.0)
        else:
            register += use
        reading = register % MODULUS  # the register wraps at its modulus (starts near it: see START)
        if event == "replay":  # one stale older value, then the register again
            reading = max(values[-1] - x * 50.0, 0.0)
            # the step back up counts again; a stale value that small is also indistinguishable from a reset
            slack += x * 50.0 + use + reset_floor(CAPACITY, seconds / 3600.0)
        if event == "drop":  # the register re-synced lower and counts on from there
            register = max(register - x * 50.0, 0.0)
            reading = register % MODULUS
            slack += reset_floor(CAPACITY, seconds / 3600.0)  # re-synced near zero: a reset
        times.append(t)
        values.append(reading)
        truth.append(use)
    return pd.Series(values, index=pd.DatetimeIndex(times)), swaps, np.array(truth), slack


@given(st.lists(step, min_size=2, max_size=60), START)
@settings(max_examples=300, deadline=None)
def test_no_interval_is_negative_or_above_capacity(steps, start):
    readings, swaps, truth, _slack = simulate(steps, start)
    d = point_deltas(readings, REF, PointAdjustments(replacements=tuple(swaps)))
    hours = (d.index - pd.DatetimeIndex(d["start"])).total_seconds().to_numpy() / 3600.0
    limit = consumption_limit(CAPACITY, hours)
    assert (d["delta"] >= 0).all()
    assert (d["delta"].to_numpy() <= limit + 1e-9).all()
    assert d["delta"].sum() <= limit.sum() + 1e-6  # nor the total


@given(st.lists(st.tuples(SECONDS, st.floats(0.0, 1.0), st.sampled_from(["none", "replacement"]),
                          st.floats(0.0, 1.0)), min_size=2, max_size=60),
       START)
@settings(max_examples=300, deadline=None)
def test_rollovers_and_recorded_replacements_lose_nothing(steps, start):
    readings, swaps, truth, _ = simulate(steps, start)
    d = point_deltas(readings, REF, PointAdjustments(replacements=tuple(swaps)))
    assert not d["quarantined"].any()
    np.testing.assert_allclose(d["delta"].to_numpy(), truth, rtol=1e-9, atol=1e-6)


@given(st.lists(step, min_size=2, max_size=60), START)
@settings(max_examples=300, deadline=None)
def test_backward_steps_never_count_more_than_the_meter_moved(steps, start):
    """A backward step counts zero and the next increase is measured from the new value: the total exceeds
    the true use by at most the depth of the replays (a stale value, then the register again), and a drop to
    near zero counts as a reset (at most what the meter could have delivered in that interval)."""
    readings, swaps, truth, slack = simulate(steps, start)
    d = point_deltas(readings, REF, PointAdjustments(replacements=tuple(swaps)))
    assert d["delta"].sum() <= truth.sum() + slack + 1e-6


def test_a_step_back_after_a_long_outage_does_not_count_the_register():
    """Two days without readings, then a value 2 kWh lower: backwards (0), not a reset of 5 008 kWh."""
    idx = pd.DatetimeIndex(["2026-03-01T00:00Z", "2026-03-03T00:00Z", "2026-03-03T00:01Z"])
    d = point_deltas(pd.Series([5010.0, 5008.0, 5009.0], index=idx), REF, PointAdjustments())
    assert d["delta"].tolist() == pytest.approx([0.0, 1.0]) and d["event"].tolist() == ["backwards", ""]


def test_the_demo_restart_does_not_count_the_register():
    """The reported defect: 3.4 million kWh on the register, the restart replays a value 8 kWh lower."""
    idx = pd.date_range("2026-03-01T00:00Z", periods=5, freq="min")
    readings = pd.Series([3_400_000.0, 3_400_001.5, 3_399_993.5, 3_399_995.0, 3_399_996.5], index=idx)
    d = point_deltas(readings, REF, PointAdjustments())
    assert d["delta"].tolist() == pytest.approx([1.5, 0.0, 1.5, 1.5])
    assert d["event"].tolist() == ["", "backwards", "", ""]
