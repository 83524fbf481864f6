"""PointProcessor: scaling to canonical units and every data-quality reason, by hand."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lingtan.park.index import iter_points
from lingtan.park.loader import parse_park
from lingtan_collectors.common.quality import PointProcessor

PARK = """
park: {id: t, name: t, province: 江苏, grid_region: east_china, location: {latitude: 31.5, longitude: 120.3}}
devices:
  - {id: plc, protocol: modbus}
  - {id: mq, protocol: mqtt}
enterprises:
  - id: e1
    name: e1
    credit_code: 91320214MA20EN001H
    industry_code: C3982
    units:
      - id: u1
        name: u1
        meters:
          - id: m-gas
            name: gas
            carrier: natural_gas
            device: mq
            points:
              - {id: gas.total, kind: counter, unit: L, scale: 10, offset: 5, rollover: 100000,
                 mqtt: {topic: t/gas, json_path: energy.total}}
              - {id: gas.rate, kind: rate, unit: m3/min, valid_min: 0, valid_max: 600,
                 mqtt: {topic: t/gas, json_path: power.value}}
          - id: m-el
            name: el
            carrier: electricity
            device: plc
            points:
              - {id: el.total, kind: counter, unit: MWh, scale: 0.001, role: consumption,
                 modbus: {unit_id: 1, function: 3, address: 0, type: uint16}}
              - {id: el.f, kind: counter, unit: kWh, role: consumption,
                 modbus: {unit_id: 1, function: 3, address: 2, type: float32}}
"""

TS = 1_767_225_600_000_000_000


@pytest.fixture
def mqtt_proc():
    refs = iter_points(parse_park(PARK, Path("t.yaml")))
    return PointProcessor([r for r in refs if r.device_id == "mq"], "mq", stale_after_s=0.2)


@pytest.fixture
def modbus_proc():
    refs = iter_points(parse_park(PARK, Path("t.yaml")))
    return PointProcessor([r for r in refs if r.device_id == "plc"], "plc", stale_after_s=60)


def _value(line: str) -> float:
    return float(line.split(" ")[1].split("=")[1])


def test_scale_offset_and_unit_factor(mqtt_proc, modbus_proc):
    # (raw * scale + offset) * factor: L -> m3 is 0.001; m3/min -> m3/h is 60; MWh -> kWh is 1000
    (line,) = mqtt_proc.good("gas.total", 1234.0, TS)
    assert line.startswith("natural_gas,carrier=natural_gas,enterprise=e1,meter=m-gas,park=t,point=gas.total,"
                           "protocol=mqtt,unit=u1 total=")
    assert math.isclose(_value(line), (1234 * 10 + 5) * 0.001)
    assert line.endswith(f" {TS}")
    assert math.isclose(_value(mqtt_proc.good("gas.rate", 2.5, TS)[0]), 150.0)
    assert math.isclose(_value(modbus_proc.good("el.total", 5000, TS)[0]), 5000.0)


def test_out_of_range_is_recorded_not_written(mqtt_proc):
    (line,) = mqtt_proc.good("gas.rate", 11.0, TS)  # 660 m3/h > 600
    assert line.startswith("data_quality,") and "reason=out_of_range" in line and "value=660.0" in line
    assert "m3/h" in line
    assert mqtt_proc.counts["out_of_range"] == 1


def test_rollover_at_register_width_and_at_declared_modulus(mqtt_proc, modbus_proc):
    modbus_proc.good("el.total", 65530, TS)
    dq, raw = modbus_proc.good("el.total", 4, TS + 1)
    assert "reason=counter_rollover" in dq and "modulus 65536" in dq
    assert raw.startswith("electricity,") and math.isclose(_value(raw), 4.0)
    mqtt_proc.good("gas.total", 99_990.0, TS)
    dq, _ = mqtt_proc.good("gas.total", 3.0, TS + 1)
    assert "reason=counter_rollover" in dq and "modulus 100000" in dq


def test_reset_when_backwards_without_wrap(modbus_proc):
    modbus_proc.good("el.f", 5000.0, TS)
    dq, raw = modbus_proc.good("el.f", 10.0, TS + 1)
    assert "reason=counter_reset" in dq and "raw 5000 -> 10" in dq
    assert math.isclose(_value(raw), 10.0)
    # a late (older) reading does not count as going backwards
    assert len(modbus_proc.good("el.f", 1.0, TS - 10)) == 1


def test_a_replayed_older_value_is_backwards_not_a_reset(modbus_proc):
    # a gateway restart replays a value a few kWh below the last: the same drop rules as the accounting
    modbus_proc.good("el.f", 3_400_000.0, TS)
    dq, raw = modbus_proc.good("el.f", 3_399_995.0, TS + 1)
    assert "reason=counter_backwards" in dq and "raw 3400000 -> 3399995" in dq
    assert math.isclose(_value(raw), 3_399_995.0)  # written as read: nothing accepted is dropped
    assert modbus_proc.counts["counter_backwards"] == 1 and modbus_proc.counts["counter_reset"] == 0


def test_unparseable_and_non_finite_values(mqtt_proc):
    assert "reason=parse_error" in mqtt_proc.good("gas.rate", "abc", TS)[0]
    assert "reason=parse_error" in mqtt_proc.good("gas.rate", float("nan"), TS)[0]
    assert "reason=parse_error" in mqtt_proc.good("gas.total", float("inf"), TS)[0]
    assert mqtt_proc.counts["parse_error"] == 3


def test_bad_status_and_device_events(modbus_proc):
    (line,) = modbus_proc.bad("el.f", "bad_status", TS, "status BadSensorFailure", raw=7.0)
    assert "reason=bad_status" in line and 'detail="status BadSensorFailure"' in line and "value=7.0" in line
    lines = modbus_proc.device_event("timeout", TS, "no answer", ["el.total", "el.f"])
    assert len(lines) == 2 and all("reason=timeout" in x and "device=plc" in x for x in lines)


def test_stale_once_per_interval(mqtt_proc):
    mqtt_proc.good("gas.rate", 1.0, TS)
    time.sleep(0.3)
    first = mqtt_proc.stale()
    assert {ln.split("point=")[1].split(",")[0] for ln in first} == {"gas.rate", "gas.total"}
    assert mqtt_proc.stale() == []  # not again within the interval
    mqtt_proc.good("gas.rate", 1.0, TS + 1)
    time.sleep(0.3)
    assert len(mqtt_proc.stale()) == 2


def test_logged_once_per_device_and_reason_per_interval(mqtt_proc, caplog):
    with caplog.at_level(logging.WARNING, logger="lingtan_collectors.common.quality"):
        for _ in range(100):
            mqtt_proc.good("gas.rate", 1e6, TS)
    assert len(caplog.records) == 1
    assert mqtt_proc.counts["out_of_range"] == 100


_readings_strategy = st.lists(
    st.tuples(
        st.sampled_from(["gas.total", "gas.rate"]),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                  st.floats(min_value=0, max_value=2e5), st.integers(-10, 10**6), st.just("x")),
        st.integers(TS - 10**10, TS + 10**10),
    ),
    max_size=60,
)


@given(_readings_strategy)
@settings(max_examples=300, deadline=None)
def test_good_many_equals_good_reading_by_reading(readings):
    """The inlined batch path gives the same lines, counts and counter state as good()."""
    refs = [r for r in iter_points(parse_park(PARK, Path("t.yaml"))) if r.device_id == "mq"]
    one, many = (PointProcessor(refs, "mq", stale_after_s=60) for _ in range(2))
    expected: list[str] = []
    for pid, raw, ts in readings:
        expected += one.good(pid, raw, ts)
    assert many.good_many(readings) == expected
    assert many.points_in == one.points_in
    assert many.counts == one.counts
    assert many.last_raw("gas.total") == one.last_raw("gas.total")
