"""The one owner of counter semantics (lingtan.park.counters), by hand; the simulator and the collectors agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lingtan.park import counters
from lingtan.park.index import iter_points
from lingtan.park.loader import parse_park
from lingtan_collectors.common import codec
from lingtan_collectors.common.quality import PointProcessor

PARK = """
park: {id: t, name: t, province: 江苏, grid_region: east_china, location: {latitude: 31.5, longitude: 120.3}}
devices:
  - {id: plc, protocol: modbus}
  - {id: ua, protocol: opcua}
enterprises:
  - id: e1
    name: e1
    credit_code: 91320214MA20EN001H
    industry_code: C3982
    units:
      - id: u1
        name: u1
        meters:
          - id: m-8digit
            name: 8-digit meter in a uint32 register
            carrier: electricity
            device: plc
            capacity: 400
            points:
              - {id: d8.total, kind: counter, unit: kWh, role: consumption, rollover: 100000000,
                 modbus: {unit_id: 1, function: 3, address: 0, type: uint32}}
          - id: m-u16
            name: uint16 water counter
            carrier: water
            device: plc
            points:
              - {id: w.total, kind: counter, unit: m3, scale: 0.1, modbus: {unit_id: 1, function: 3, address: 2, type: uint16}}
              - {id: w.rate, kind: rate, unit: m3/h, valid_min: 0, valid_max: 60,
                 modbus: {unit_id: 1, function: 3, address: 3, type: uint16}}
          - id: m-ua
            name: OPC UA steam meter
            carrier: steam
            device: ua
            points:
              - {id: s.total, kind: counter, unit: t, opcua: {node_id: "ns=2;s=s"}}
              - {id: s.rate, kind: rate, unit: t/h, opcua: {node_id: "ns=2;s=r"}}
"""


@pytest.fixture
def refs():
    return {r.id: r for r in iter_points(parse_park(PARK, Path("t.yaml")))}


def test_modulus_precedence_is_the_same_for_collector_and_simulator(refs):
    # an explicit rollover wins over the register width (docs/park-model.md, rollover)
    assert counters.raw_modulus(refs["d8.total"].point) == 1e8
    assert counters.raw_modulus(refs["w.total"].point) == 65536
    assert counters.canonical_modulus(refs["w.total"]) == pytest.approx(6553.6)
    assert counters.raw_modulus(refs["s.total"].point) is None
    assert counters.raw_modulus(refs["w.rate"].point) is None
    # the simulator wraps the 8-digit meter at 10^8, not at 2^32, and the collector calls that a rollover
    ref = refs["d8.total"]
    assert codec.to_wire(ref, 100_000_012.7) == 12
    proc = PointProcessor([ref], "plc", stale_after_s=60)
    proc.good("d8.total", codec.to_wire(ref, 99_999_990.0), 1)
    dq, _ = proc.good("d8.total", codec.to_wire(ref, 100_000_012.7), 2)
    assert "reason=counter_rollover" in dq and "modulus 100000000" in dq


def test_rated_capacity_explicit_from_the_rate_range_or_per_carrier(refs):
    assert counters.rated_capacity(refs["d8.total"].meter) == 400  # stated
    assert counters.rated_capacity(refs["w.total"].meter) == 60  # the rate point's valid_max
    assert counters.rated_capacity(refs["s.total"].meter) == counters.DEFAULT_CAPACITY[refs["s.total"].carrier] == 200
    assert counters.register_step(refs["w.total"]) == pytest.approx(0.1)
    assert counters.register_step(refs["s.total"]) == 0.0


def test_after_a_long_gap_a_small_step_back_is_not_a_reset():
    # 100 kW meter at 5 010 kWh; two days without readings; then a value replayed 2 kWh lower
    floor = counters.reset_floor(100.0, 48.0)
    assert floor == pytest.approx(150.0)  # at most one hour of rated flow, whatever the gap
    assert counters.classify_step(5010.0, 5008.0, None, floor) == "backwards"
    assert counters.classify_step(5010.0, 120.0, None, floor) == "reset"  # a new register, near zero


def test_limit_by_hand():
    # 400 kW for 15 min at 1.5 overload: 150 kWh; a 1-s interval is judged as one minute: 10 kWh, plus one count
    assert counters.consumption_limit(400.0, 0.25) == pytest.approx(150.0)
    assert counters.consumption_limit(400.0, 1 / 3600, step=1.0) == pytest.approx(400 / 60 * 1.5 + 1.0)


@pytest.mark.parametrize(("previous", "value", "modulus", "floor", "event", "delta"), [
    (100.0, 130.0, None, 0.0, "", 30.0),
    (65530.0, 4.0, 65536.0, 0.0, "rollover", 10.0),
    (5000.0, 10.0, None, 0.0, "reset", 10.0),  # 0.2 % of the old reading: restarted from zero
    (5000.0, 499.0, None, 0.0, "reset", 499.0),  # at most 10 %
    (5000.0, 600.0, None, 0.0, "backwards", 0.0),  # 12 %: not near zero
    (5000.0, 600.0, None, 800.0, "reset", 600.0),  # ... unless the meter could have delivered it since
    (3_400_000.0, 3_399_990.0, None, 400.0, "backwards", 0.0),  # the demo restart: a few kWh back
    (3_400_000.0, 3_399_990.0, 2.0 ** 32, 400.0, "backwards", 0.0),  # not a rollover either
])
def test_drop_rules(previous, value, modulus, floor, event, delta):
    d, code = counters.step_consumption(np.array([previous]), np.array([value]), modulus, floor)
    assert counters.EVENT_NAMES[code].tolist() == [event] and d.tolist() == [pytest.approx(delta)]
    assert counters.classify_step(previous, value, modulus, floor) == event
