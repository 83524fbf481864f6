"""Consumption from counters and rates, and the Asia/Shanghai calendar, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lingtan.park.counters import EVENT_NAMES
from lingtan_calc.core.accounting.consumption import (
    Replacement,
    calendar_sum,
    counter_deltas,
    counter_deltas_wide,
    period_starts,
    rate_deltas,
    spread,
)


def utc(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps), tz="UTC")


def test_counter_rollover_reset_duplicates_and_late_points():
    # uint16 counter with scale 0.1 kWh: modulus 6553.6 kWh
    s = pd.Series([6500.0, 6550.0, 20.0, 30.0, 2.0, 25.0, 25.0],
                  index=utc("2026-03-01T00:00", "2026-03-01T00:15", "2026-03-01T00:30", "2026-03-01T00:45",
                            "2026-03-01T01:00", "2026-03-01T01:15", "2026-03-01T01:15"))
    late = s.sample(frac=1.0, random_state=3)  # same points, any order
    d = counter_deltas(late, modulus=6553.6)
    # 30 -> 2 is near zero (at most 10 % of the previous reading): a reset, counting 2
    assert d["delta"].round(6).tolist() == [50.0, 23.6, 10.0, 2.0, 23.0]
    assert d["event"].tolist() == ["", "rollover", "", "reset", ""]
    assert (d["delta"] >= 0).all()


def test_duplicate_timestamp_keeps_the_last_value():
    s = pd.Series([1.0, 2.0, 5.0], index=utc("2026-03-01T00:00", "2026-03-01T00:15", "2026-03-01T00:15"))
    assert counter_deltas(s)["delta"].tolist() == [4.0]


def test_rate_integration_trapezoid_and_gap():
    s = pd.Series([100.0, 200.0, 200.0, 50.0],
                  index=utc("2026-03-01T00:00", "2026-03-01T00:15", "2026-03-01T00:30", "2026-03-01T02:00"))
    d = rate_deltas(s, max_gap="15min")
    # (100+200)/2 kW × 0.25 h = 37.5 kWh; 200 × 0.25 = 50; 90 min gap: unknown
    assert d["delta"].iloc[:2].tolist() == [37.5, 50.0]
    assert np.isnan(d["delta"].iloc[2]) and d["event"].iloc[2] == "gap"


def test_days_and_months_are_shanghai_across_utc_boundaries():
    # 2026-02-28T16:00Z is 2026-03-01 00:00 in Shanghai
    idx = utc("2026-02-28T15:59:59", "2026-02-28T16:00:00", "2024-02-29T15:30:00", "2023-12-31T16:00:00")
    assert [str(t) for t in period_starts(idx, "day")] == [
        "2026-02-28 00:00:00+08:00", "2026-03-01 00:00:00+08:00", "2024-02-29 00:00:00+08:00",
        "2024-01-01 00:00:00+08:00"]
    assert [str(t) for t in period_starts(idx, "month")] == [
        "2026-02-01 00:00:00+08:00", "2026-03-01 00:00:00+08:00", "2024-02-01 00:00:00+08:00",
        "2024-01-01 00:00:00+08:00"]
    assert [str(t) for t in period_starts(idx, "year")][3] == "2024-01-01 00:00:00+08:00"


def test_spread_splits_an_interval_across_midnight_and_a_leap_day():
    # a reading gap from 2024-02-28 22:00 to 2024-03-01 02:00 Shanghai (28 h) with 28 kWh
    start = pd.Timestamp("2024-02-28T22:00", tz="Asia/Shanghai").tz_convert("UTC")
    end = pd.Timestamp("2024-03-01T02:00", tz="Asia/Shanghai").tz_convert("UTC")
    d = pd.DataFrame({"start": [start], "delta": [28.0], "event": [""]}, index=pd.DatetimeIndex([end]))
    days = spread(d, "day")
    assert days.round(9).to_dict() == {
        pd.Timestamp("2024-02-28", tz="Asia/Shanghai"): 2.0,
        pd.Timestamp("2024-02-29", tz="Asia/Shanghai"): 24.0,
        pd.Timestamp("2024-03-01", tz="Asia/Shanghai"): 2.0,
    }
    months = spread(d, "month")
    assert months.round(9).tolist() == [26.0, 2.0]


def test_interval_ending_on_a_boundary_belongs_to_the_earlier_period():
    start = pd.Timestamp("2026-03-01T00:45", tz="Asia/Shanghai")
    end = pd.Timestamp("2026-03-01T01:00", tz="Asia/Shanghai")
    d = pd.DataFrame({"start": [start], "delta": [3.0], "event": [""]}, index=pd.DatetimeIndex([end]))
    assert spread(d, "hour").to_dict() == {pd.Timestamp("2026-03-01T00:00", tz="Asia/Shanghai"): 3.0}


@given(st.lists(st.floats(min_value=0, max_value=65535, allow_nan=False), min_size=2, max_size=80),
       st.integers(0, 10_000))
@settings(max_examples=200, deadline=None)
def test_counter_never_negative_and_spread_preserves_the_total(values, seed):
    rng = np.random.default_rng(seed)
    steps = rng.integers(1, 7200, size=len(values))
    index = pd.DatetimeIndex(pd.Timestamp("2024-12-31T10:00Z") + pd.to_timedelta(np.cumsum(steps), unit="s"))
    d = counter_deltas(pd.Series(values, index=index), modulus=65536.0)
    assert (d["delta"] >= 0).all()
    for period in ("hour", "day", "month", "year"):
        assert spread(d, period).sum() == pytest.approx(d["delta"].sum(), rel=1e-9, abs=1e-6)
    hourly = spread(d, "hour")
    assert calendar_sum(hourly, "day").to_dict() == pytest.approx(spread(d, "day").to_dict())


def test_wide_deltas_match_the_long_form():
    idx = pd.date_range("2026-03-01", periods=6, freq="h", tz="Asia/Shanghai")
    wide = pd.DataFrame({"a": [0.0, 10.0, np.nan, 30.0, 2.0, 15.0],  # a gap, then a reset
                         "b": [65000.0, 65500.0, 100.0, 600.0, 700.0, 800.0]},  # a uint16 rollover
                        index=idx)
    d, events = counter_deltas_wide(wide, np.array([np.nan, 65536.0]))
    assert d["a"].tolist() == [10.0, 10.0, 10.0, 2.0, 13.0]
    names = EVENT_NAMES[events.to_numpy()]
    assert names[:, 0].tolist() == ["", "", "", "reset", ""] and names[1, 1] == "rollover"
    assert d["b"].tolist() == [500.0, 136.0, 500.0, 100.0, 100.0]
    long_b = counter_deltas(wide["b"], modulus=65536.0)["delta"].tolist()
    assert d["b"].tolist() == long_b


def test_a_backward_step_counts_zero_and_the_next_increase_from_the_new_value():
    # the demo park's restart: every counter came back a few kWh lower and counted on from there
    s = pd.Series([3_400_000.0, 3_400_010.0, 3_399_996.0, 3_400_020.0],
                  index=utc("2026-03-01T00:00", "2026-03-01T00:01", "2026-03-01T00:02", "2026-03-01T00:03"))
    d = counter_deltas(s, modulus=2.0 ** 32, capacity=400.0)
    assert d["delta"].tolist() == [10.0, 0.0, 24.0]
    assert d["event"].tolist() == ["", "backwards", ""]


def test_a_meter_replacement_counts_the_old_remainder_and_the_new_start():
    # old register read 995 at 00:10, its final reading was 997 when it came out at 00:12; the new one went in
    # at 1 and read 3 at 00:15: the interval counts (997 - 995) + (3 - 1) = 4
    s = pd.Series([990.0, 995.0, 3.0, 8.0],
                  index=utc("2026-03-01T00:05", "2026-03-01T00:10", "2026-03-01T00:15", "2026-03-01T00:20"))
    swap = Replacement(pd.Timestamp("2026-03-01T00:12Z"), old_final=997.0, new_initial=1.0)
    d = counter_deltas(s, replacements=[swap])
    assert d["delta"].tolist() == [5.0, 4.0, 5.0]
    assert d["event"].tolist() == ["", "replacement", ""]
    # without the record the drop to 3 is a reset: the old meter's last 2 and the new meter's first 1 are lost
    assert counter_deltas(s)["delta"].tolist() == [5.0, 3.0, 5.0]


def test_screen_quarantines_what_no_meter_of_that_capacity_could_deliver():
    from lingtan_calc.core.accounting.plausibility import screen

    s = pd.Series([0.0, 2.0, 7.0, 9.0, 9.5],
                  index=utc("2026-03-01T00:00", "2026-03-01T00:01", "2026-03-01T00:02", "2026-03-01T00:03",
                            "2026-03-01T00:03:01"))
    d = screen(counter_deltas(s), capacity=100.0)  # 100 kW × 1 min × 1.5 = 2.5 kWh
    assert d["quarantined"].tolist() == [False, True, False, False]
    assert d["delta"].tolist() == [2.0, 0.0, 2.0, 0.5]  # a 1-s interval is judged as one minute
    assert d["measured"].tolist()[1] == 5.0 and d["limit"].tolist()[1] == pytest.approx(2.5)
    # a person confirmed it: the measured value counts
    ok = screen(counter_deltas(s), capacity=100.0, accepted=[(s.index[1], s.index[2])])
    assert ok["delta"].tolist() == [2.0, 5.0, 2.0, 0.5]


def test_a_correction_replaces_the_metered_share_of_its_range():
    from lingtan_calc.core.accounting.plausibility import Correction, substitute

    s = pd.Series([0.0, 2.0, 7.0, 9.0], index=utc("2026-03-01T00:00", "2026-03-01T00:01", "2026-03-01T00:02",
                                                 "2026-03-01T00:03"))
    fixed = substitute(counter_deltas(s), [Correction(s.index[1], s.index[2], 1.5)])
    assert fixed["delta"].tolist() == [2.0, 0.0, 1.5, 2.0]
    assert fixed["event"].tolist() == ["", "", "corrected", ""]
    assert spread(fixed, "hour").tolist() == [5.5]
