"""Tests of the park model (lingtan.park): the demo park meets its spec, and every class of
mistake in a park file is reported with file, line, field path and (where there is one) the
offending value.

The mistake tests start from ``SMALL_PARK``, a compact valid park, and mutate its text. Expected
line numbers are computed from the mutated text, never hard-coded, so the fixture can grow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lingtan
from lingtan.park import Park, ParkModelError, load_park, parse_park
from lingtan.park.carriers import CARRIER_UNITS, Carrier, Kind
from lingtan.park.model import RESERVED_TAGS, credit_code_check_char
from lingtan_collectors.modbus.model import MODBUS_TYPE_WORDS

DEMO_PARK = Path(lingtan.__file__).parent / "data" / "demo_park.yaml"

# Credit code of the fixture enterprise, check character computed by hand (GB 32100-2015, 5.3).
# Character values: 0-9 -> 0-9, A=10 ... (I, O, S, V, Z are not used) so M=21, A=10, L=20, T=26.
# Weights W_i = 3^(i-1) mod 31 = 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28.
#   code   9  1  3  2  0  2  1  4   M   A  1   L   T  0  0  0  1
#   value  9  1  3  2  0  2  1  4  21  10  1  20  26  0  0  0  1
#   v*w    9  3 27 54  0 52 16 68 420 290 25 260 208  0  0  0 28   sum = 1460
#   1460 mod 31 = 3 (31*47 = 1457); check value = 31 - 3 = 28 -> 'W'
VALID_CREDIT_CODE = "91320214MA1LT0001W"

SMALL_PARK = """\
# Compact valid park for tests/test_park_model.py.
park:
  id: tpark
  name: 测试园区
  province: 江苏
  grid_region: east_china
  location:
    latitude: 31.5
    longitude: 120.3
devices:
- id: dev-opc
  protocol: opcua
- id: dev-mb
  protocol: modbus
  poll_interval_s: 2
- id: dev-mb2
  protocol: modbus
- id: dev-mq
  protocol: mqtt
enterprises:
- id: ent1
  name: 测试电子有限公司
  credit_code: 91320214MA1LT0001W
  industry_code: C3982
  units:
  - id: u1
    name: 一车间
    meters:
    - id: m-grid
      name: 关口表
      carrier: electricity
      device: dev-opc
      points:
      - id: m-grid.import
        kind: counter
        unit: kWh
        role: grid_import
        opcua:
          node_id: ns=2;s=m-grid.Import
      - id: m-grid.export
        kind: counter
        unit: MWh
        role: grid_export
        opcua:
          node_id: ns=2;s=m-grid.Export
      - id: m-grid.power
        kind: rate
        unit: kW
        role: grid_import
        valid_min: -5000
        valid_max: 5000
        opcua:
          node_id: ns=2;s=m-grid.Power
    - id: m-gas
      name: 锅炉天然气表
      carrier: natural_gas
      device: dev-mb
      points:
      - id: m-gas.total
        kind: counter
        unit: m3
        scale: 0.1
        modbus:
          unit_id: 1
          function: 3
          address: 0
          type: uint32
      - id: m-gas.flow
        kind: rate
        unit: m3/h
        modbus:
          unit_id: 1
          function: 3
          address: 2
          type: float32
    - id: m-steam
      name: 锅炉蒸汽流量计
      carrier: steam
      device: dev-mb
      points:
      - id: m-steam.total
        kind: counter
        unit: t
        modbus:
          unit_id: 1
          function: 3
          address: 4
          type: float64
      - id: m-steam.flow
        kind: rate
        unit: kg/h
        modbus:
          unit_id: 1
          function: 3
          address: 8
          type: uint16
      - id: m-steam.flow2
        kind: rate
        unit: t/h
        modbus:
          unit_id: 2
          function: 4
          address: 4
          type: int16
    - id: m-heat
      name: 换热站热量表
      carrier: heat
      device: dev-mb2
      points:
      - id: m-heat.total
        kind: counter
        unit: GJ
        modbus:
          unit_id: 1
          function: 3
          address: 0
          type: uint32
    - id: m-water
      name: 车间水表
      carrier: water
      device: dev-mq
      usage: non_production
      points:
      - id: m-water.total
        kind: counter
        unit: m3
        rollover: 100000
        mqtt:
          topic: tpark/u1/m-water
          json_path: energy.total
        tags:
          floor: '2'
      - id: m-water.flow
        kind: rate
        unit: m3/h
        mqtt:
          topic: tpark/u1/m-water
          json_path: flow
topology:
  nodes:
  - id: grid
    name: 电网
    type: supply
    kind: grid
  - id: gas-main
    name: 天然气门站
    type: supply
    kind: gas_main
  - id: boiler
    name: 燃气锅炉
    type: conversion
    kind: boiler
  - id: n-u1
    name: 一车间
    type: end_use
    kind: unit
    unit: u1
  - id: export
    name: 上网
    type: end_use
    kind: export
  edges:
  - from: grid
    to: n-u1
    carrier: electricity
    meter: m-grid
    point: m-grid.import
  - from: n-u1
    to: export
    carrier: electricity
    meter: m-grid
    point: m-grid.export
  - from: gas-main
    to: boiler
    carrier: natural_gas
    meter: m-gas
  - from: boiler
    to: n-u1
    carrier: steam
    meter: m-steam
"""


# --------------------------------------------------------------------------- helpers


def mutate(text: str, *replacements: tuple[str, str]) -> str:
    """Apply each (old, new) replacement; ``old`` must occur exactly once."""
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the fixture"
        text = text.replace(old, new)
    return text


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line of ``text`` that contains ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def field_line(text: str, item_id: str, key: str) -> int:
    """Line of the first ``key:`` after the list item ``- id: item_id``."""
    lines = text.splitlines()
    start = _item_line(lines, item_id)
    for n in range(start, len(lines) + 1):
        if lines[n - 1].strip().lstrip("- ").startswith(f"{key}:"):
            return n
    raise AssertionError(f"no {key!r} after item {item_id!r}")


def item_line(text: str, item_id: str) -> int:
    """Line of the list item ``- id: item_id``."""
    return _item_line(text.splitlines(), item_id)


def _item_line(lines: list[str], item_id: str) -> int:
    hits = [n for n, line in enumerate(lines, start=1) if line.strip() == f"- id: {item_id}"]
    assert len(hits) == 1, f"item {item_id!r} is on lines {hits}"
    return hits[0]


def expect_error(
    tmp_path: Path, text: str, *, line: int | None, field: str, contains: tuple[str, ...] = ()
) -> ParkModelError:
    """Load ``text`` from a file; assert one error names that file, ``line``, ``field`` and ``contains``."""
    path = tmp_path / "park.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParkModelError) as info:
        load_park(path)
    exc = info.value
    assert exc.path == path
    matching = [msg for ln, fld, msg in exc.errors if ln == line and fld == field]
    assert matching, f"no error at line {line} field {field!r}; got {exc.errors}"
    assert any(all(part in msg for part in contains) for msg in matching), (
        f"no error at line {line} field {field!r} mentions {contains}; got {matching}"
    )
    # the rendered message carries the same information, prefixed with file:line
    rendered = f"{path}:{line if line is not None else '?'}: {field}: "
    assert rendered in str(exc), str(exc)
    return exc


POINT = "enterprises[0].units[0].meters[{m}].points[{p}]"
METER = "enterprises[0].units[0].meters[{m}]"


def test_small_park_is_valid() -> None:
    park = parse_park(SMALL_PARK, Path("small.yaml"))
    assert isinstance(park, Park)
    assert [m.id for m in park.enterprises[0].units[0].meters] == ["m-grid", "m-gas", "m-steam", "m-heat", "m-water"]
    assert park.enterprises[0].units[0].meters[4].usage.value == "non_production"
    assert park.topology.edges[0].source == "grid"
    assert park.topology.edges[0].target == "n-u1"


# --------------------------------------------------------------------------- mistakes: hierarchy


def test_unknown_carrier(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      carrier: steam\n", "      carrier: hydrogen\n"))
    expect_error(tmp_path, text, line=line_of(text, "carrier: hydrogen"), field=METER.format(m=2) + ".carrier",
                 contains=("'hydrogen'", "'natural_gas'"))


def test_duplicate_point_id(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      - id: m-steam.flow2\n", "      - id: m-gas.flow\n"))
    # the second occurrence is reported
    second = [n for n, ln in enumerate(text.splitlines(), 1) if ln.strip() == "- id: m-gas.flow"][1]
    expect_error(tmp_path, text, line=second, field=POINT.format(m=2, p=2) + ".id",
                 contains=("duplicate point id", "'m-gas.flow'"))


def test_duplicate_meter_id(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("    - id: m-water\n", "    - id: m-heat\n"))
    second = [n for n, ln in enumerate(text.splitlines(), 1) if ln.strip() == "- id: m-heat"][1]
    expect_error(tmp_path, text, line=second, field=METER.format(m=4) + ".id",
                 contains=("duplicate meter id", "'m-heat'"))


def test_duplicate_meter_id_across_enterprises(tmp_path: Path) -> None:
    data = yaml.safe_load(SMALL_PARK)
    ent2 = {
        "id": "ent2", "name": "第二企业", "credit_code": VALID_CREDIT_CODE, "industry_code": "C1419",
        "units": [{"id": "u2", "name": "二车间", "meters": [{
            "id": "m-grid", "name": "重复", "carrier": "electricity", "device": "dev-opc",
            "points": [{"id": "u2.total", "kind": "counter", "unit": "kWh", "role": "consumption",
                        "opcua": {"node_id": "ns=2;s=u2.Total"}}],
        }]}],
    }
    data["enterprises"].append(ent2)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    lines = [n for n, ln in enumerate(text.splitlines(), 1) if ln.strip() == "- id: m-grid"]
    expect_error(tmp_path, text, line=lines[1], field="enterprises[1].units[0].meters[0].id",
                 contains=("duplicate meter id", "'m-grid'"))


def test_unknown_device(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      device: dev-mq\n", "      device: dev-lora\n"))
    expect_error(tmp_path, text, line=line_of(text, "device: dev-lora"), field=METER.format(m=4) + ".device",
                 contains=("unknown device", "'dev-lora'", "'m-water'"))


def test_binding_protocol_differs_from_device_protocol(tmp_path: Path) -> None:
    # m-heat is on a Modbus gateway; give its point an OPC UA binding instead
    text = mutate(SMALL_PARK, (
        "        unit: GJ\n        modbus:\n          unit_id: 1\n          function: 3\n          address: 0\n"
        "          type: uint32\n",
        "        unit: GJ\n        opcua:\n          node_id: ns=2;s=m-heat.Total\n",
    ))
    expect_error(tmp_path, text, line=field_line(text, "m-heat.total", "opcua"), field=POINT.format(m=3, p=0) + ".opcua",
                 contains=("'m-heat.total'", "opcua binding", "'dev-mb2'", "speaks modbus"))


def test_meter_on_device_of_other_protocol(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      device: dev-mq\n", "      device: dev-opc\n"))
    exc = expect_error(tmp_path, text, line=field_line(text, "m-water.total", "mqtt"),
                       field=POINT.format(m=4, p=0) + ".mqtt", contains=("mqtt binding", "speaks opcua"))
    # both points of the meter are reported
    assert len(exc.errors) == 2


def test_point_without_binding(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("        opcua:\n          node_id: ns=2;s=m-grid.Power\n", ""))
    expect_error(tmp_path, text, line=item_line(text, "m-grid.power"), field=POINT.format(m=0, p=2),
                 contains=("exactly one protocol binding", "got none"))


def test_point_with_two_bindings(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, (
        "          node_id: ns=2;s=m-grid.Power\n",
        "          node_id: ns=2;s=m-grid.Power\n        mqtt:\n          topic: a/b\n          json_path: p\n",
    ))
    expect_error(tmp_path, text, line=item_line(text, "m-grid.power"), field=POINT.format(m=0, p=2),
                 contains=("exactly one protocol binding", "'opcua'", "'mqtt'"))


@pytest.mark.parametrize(
    ("point_id", "old", "bad", "meter", "point", "carrier_kind"),
    [
        ("m-gas.total", "        unit: m3\n        scale: 0.1\n", "kWh", 1, 0, "natural_gas counter"),
        ("m-grid.export", "        unit: MWh\n", "kW", 0, 1, "electricity counter"),  # rate unit on a counter
        ("m-steam.flow", "        unit: kg/h\n", "kg", 2, 1, "steam rate"),  # counter unit on a rate
        ("m-heat.total", "        unit: GJ\n", "kWh", 3, 0, "heat counter"),  # heat takes kWh_th, not kWh
    ],
)
def test_unit_not_accepted(
    tmp_path: Path, point_id: str, old: str, bad: str, meter: int, point: int, carrier_kind: str
) -> None:
    old_unit = old.split("\n")[0].split(": ")[1]
    text = mutate(SMALL_PARK, (old, old.replace(f"unit: {old_unit}", f"unit: {bad}")))
    expect_error(tmp_path, text, line=field_line(text, point_id, "unit"), field=POINT.format(m=meter, p=point) + ".unit",
                 contains=(f"unit {bad!r}", carrier_kind, "use one of"))


def test_accepted_units_listed_in_message(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("        unit: m3\n        scale: 0.1\n", "        unit: Nm3\n        scale: 0.1\n"))
    accepted = CARRIER_UNITS[Carrier.natural_gas].accepted(Kind.counter)
    expect_error(tmp_path, text, line=line_of(text, "unit: Nm3"), field=POINT.format(m=1, p=0) + ".unit",
                 contains=(str(accepted),))


def test_electricity_point_without_role(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("        role: grid_export\n", ""))
    expect_error(tmp_path, text, line=item_line(text, "m-grid.export"), field=POINT.format(m=0, p=1) + ".role",
                 contains=("'m-grid.export'", "must state its role"))


def test_role_on_non_electricity_point(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("        unit: t\n", "        unit: t\n        role: consumption\n"))
    expect_error(tmp_path, text, line=line_of(text, "role: consumption"), field=POINT.format(m=2, p=0) + ".role",
                 contains=("'m-steam.total'", "'consumption'", "only for electricity", "steam"))


def test_unknown_role(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("        role: grid_export\n", "        role: solar\n"))
    expect_error(tmp_path, text, line=line_of(text, "role: solar"), field=POINT.format(m=0, p=1) + ".role",
                 contains=("'solar'", "'pv'"))


def test_rollover_on_rate(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("        unit: m3/h\n        mqtt:", "        unit: m3/h\n        rollover: 10\n        mqtt:"))
    expect_error(tmp_path, text, line=field_line(text, "m-water.flow", "rollover"), field=POINT.format(m=4, p=1) + ".rollover",
                 contains=("only meaningful for counters",))


def test_valid_range_inverted(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("        valid_min: -5000\n", "        valid_min: 9000\n"))
    expect_error(tmp_path, text, line=item_line(text, "m-grid.power"), field=POINT.format(m=0, p=2),
                 contains=("valid_min 9000.0 > valid_max 5000.0",))


# --------------------------------------------------------------------------- mistakes: Modbus registers


def test_modbus_overlap(tmp_path: Path) -> None:
    # float32 m-gas.flow moved from 2 to 1: registers 1..2 overlap uint32 m-gas.total at 0..1
    text = mutate(SMALL_PARK, ("          address: 2\n", "          address: 1\n"))
    expect_error(tmp_path, text, line=line_of(text, "address: 1"), field=POINT.format(m=1, p=1) + ".modbus.address",
                 contains=("registers 1..2", "'m-gas.flow'", "overlap 0..1", "'m-gas.total'", "'dev-mb'",
                           "unit 1", "function 3"))


def test_modbus_float64_spanning_into_next_point(tmp_path: Path) -> None:
    # m-steam.total is a float64 at 4 (registers 4..7); m-steam.flow at 7 collides with its last word
    text = mutate(SMALL_PARK, ("          address: 8\n", "          address: 7\n"))
    expect_error(tmp_path, text, line=line_of(text, "address: 7"), field=POINT.format(m=2, p=1) + ".modbus.address",
                 contains=("registers 7..7", "'m-steam.flow'", "overlap 4..7", "'m-steam.total'"))
    # just past its end (the fixture: address 8) is fine
    park = parse_park(SMALL_PARK, Path("small.yaml"))
    assert park.enterprises[0].units[0].meters[2].points[1].modbus.address == 8  # type: ignore[union-attr]


def test_modbus_overlap_not_adjacent_after_sorting(tmp_path: Path) -> None:
    # float64 at 4..7 with uint16 points at 5 and 6: the point at 6 does not overlap its sorted neighbour
    # (5..5) but does overlap the float64; both must be reported
    text = mutate(
        SMALL_PARK,
        ("          address: 8\n", "          address: 5\n"),
        ("          unit_id: 2\n          function: 4\n          address: 4\n",
         "          unit_id: 1\n          function: 3\n          address: 6\n"),
    )
    exc = expect_error(tmp_path, text, line=line_of(text, "address: 6"),
                       field=POINT.format(m=2, p=2) + ".modbus.address",
                       contains=("'m-steam.flow2'", "overlap 4..7", "'m-steam.total'"))
    assert len(exc.errors) == 2
    expect_error(tmp_path, text, line=line_of(text, "address: 5"), field=POINT.format(m=2, p=1) + ".modbus.address",
                 contains=("'m-steam.flow'", "overlap 4..7"))


@pytest.mark.parametrize(
    ("unit_id", "function"),
    [(2, 3), (1, 4)],
    ids=["other-unit-id", "other-function"],
)
def test_modbus_same_address_other_unit_or_function_is_fine(unit_id: int, function: int) -> None:
    # m-gas.flow at address 0, the address of m-gas.total, but on another unit id or function code
    text = mutate(SMALL_PARK, (
        "          unit_id: 1\n          function: 3\n          address: 2\n",
        f"          unit_id: {unit_id}\n          function: {function}\n          address: 0\n",
    ))
    park = parse_park(text, Path("small.yaml"))
    assert park.enterprises[0].units[0].meters[1].points[1].modbus.address == 0  # type: ignore[union-attr]


def test_modbus_same_registers_on_another_device_is_fine() -> None:
    # m-heat on dev-mb2 uses unit 1 function 3 address 0, the same as m-gas.total on dev-mb (fixture)
    park = parse_park(SMALL_PARK, Path("small.yaml"))
    meters = park.enterprises[0].units[0].meters
    assert meters[1].points[0].modbus == meters[3].points[0].modbus
    assert meters[1].device != meters[3].device


def test_modbus_register_range_beyond_65535(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("          address: 8\n          type: uint16\n",
                               "          address: 65534\n          type: float64\n"))
    expect_error(tmp_path, text, line=field_line(text, "m-steam.flow", "modbus"), field=POINT.format(m=2, p=1) + ".modbus",
                 contains=("65534..65537 exceeds 65535",))


# --------------------------------------------------------------------------- mistakes: topology


@pytest.mark.parametrize("end", ["from", "to"])
def test_edge_unknown_node(tmp_path: Path, end: str) -> None:
    old = "  - from: boiler\n" if end == "from" else "    to: boiler\n"
    new = old.replace("boiler", "boiler-9")
    text = mutate(SMALL_PARK, (old, new))
    edge = 3 if end == "from" else 2
    expect_error(tmp_path, text, line=line_of(text, f"{end}: boiler-9"), field=f"topology.edges[{edge}].{end}",
                 contains=("unknown node", "'boiler-9'"))


def test_edge_unknown_meter(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("    meter: m-steam\n", "    meter: m-steam-9\n"))
    expect_error(tmp_path, text, line=line_of(text, "meter: m-steam-9"), field="topology.edges[3].meter",
                 contains=("unknown meter", "'m-steam-9'"))


def test_edge_carrier_differs_from_meter(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("    carrier: steam\n    meter: m-steam\n", "    carrier: cooling\n    meter: m-steam\n"))
    expect_error(tmp_path, text, line=line_of(text, "carrier: cooling"), field="topology.edges[3].carrier",
                 contains=("'cooling'", "'m-steam'", "'steam'"))


def test_edge_on_meter_with_two_counters_needs_point(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("    point: m-grid.import\n", ""))
    # no 'point' key: the edge's own line is reported
    expect_error(tmp_path, text, line=line_of(text, "- from: grid"), field="topology.edges[0].point",
                 contains=("'m-grid'", "2 counters", "'m-grid.import'", "'m-grid.export'"))


def test_edge_names_unknown_point(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("    point: m-grid.export\n", "    point: m-grid.exprot\n"))
    expect_error(tmp_path, text, line=line_of(text, "point: m-grid.exprot"), field="topology.edges[1].point",
                 contains=("'m-grid'", "no point", "'m-grid.exprot'"))


def test_node_names_unknown_production_unit(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("    unit: u1\n", "    unit: u9\n"))
    expect_error(tmp_path, text, line=line_of(text, "unit: u9"), field="topology.nodes[3].unit",
                 contains=("unknown production unit", "'u9'"))


def test_node_kind_not_allowed_for_type(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("    kind: export\n", "    kind: grid\n"))
    expect_error(tmp_path, text, line=item_line(text, "export"), field="topology.nodes[4]",
                 contains=("'grid'", "end_use"))


def test_rated_efficiency_only_for_boiler_or_chp(tmp_path: Path) -> None:
    good = mutate(SMALL_PARK, ("    name: 燃气锅炉\n", "    name: 燃气锅炉\n    rated_efficiency: 0.92\n"))
    path = tmp_path / "good.yaml"
    path.write_text(good, encoding="utf-8")
    assert next(n for n in load_park(path).topology.nodes if n.id == "boiler").rated_efficiency == 0.92
    text = mutate(SMALL_PARK, ("    name: 电网\n", "    name: 电网\n    rated_efficiency: 0.98\n"))
    expect_error(tmp_path, text, line=item_line(text, "grid"), field="topology.nodes[0]",
                 contains=("rated_efficiency is for a boiler or a CHP", "grid"))


# --------------------------------------------------------------------------- mistakes: enterprise


def test_credit_code_check_character_hand_computed() -> None:
    assert credit_code_check_char(VALID_CREDIT_CODE[:17]) == "W"
    assert f"credit_code: {VALID_CREDIT_CODE}" in SMALL_PARK


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("91320214MA1LT0001X", "has check character 'X', expected 'W'"),
        ("91320214MA1LT0002W", "has check character 'W', expected '0'"),  # last body digit +1: sum 1488 = 48*31
        ("91320214MA1LT0001I", "must be 18 characters"),  # I is not in the character set
        ("91320214MA1LT0001", "must be 18 characters"),
    ],
)
def test_bad_credit_code(tmp_path: Path, code: str, why: str) -> None:
    text = mutate(SMALL_PARK, (VALID_CREDIT_CODE, code))
    expect_error(tmp_path, text, line=line_of(text, "credit_code:"), field="enterprises[0].credit_code",
                 contains=(repr(code), why))


@pytest.mark.parametrize("code", ["Z39", "C39821", "c3982", "3982", "C3"])
def test_bad_industry_code(tmp_path: Path, code: str) -> None:
    text = mutate(SMALL_PARK, ("industry_code: C3982", f"industry_code: '{code}'"))
    expect_error(tmp_path, text, line=line_of(text, "industry_code:"), field="enterprises[0].industry_code",
                 contains=(f"(value: {code!r})",))


# --------------------------------------------------------------------------- mistakes: tags, MQTT


@pytest.mark.parametrize("key", sorted(RESERVED_TAGS))
def test_reserved_tag_key(tmp_path: Path, key: str) -> None:
    text = mutate(SMALL_PARK, ("          floor: '2'\n", f"          {key}: x\n"))
    # the error is located at the point's 'tags' field
    expect_error(tmp_path, text, line=line_of(text, "tags:"), field=POINT.format(m=4, p=0) + ".tags",
                 contains=(f"tag key {key!r} is reserved",))


def test_malformed_tag_key(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("          floor: '2'\n", "          Floor: '2'\n"))
    expect_error(tmp_path, text, line=line_of(text, "tags:"), field=POINT.format(m=4, p=0) + ".tags",
                 contains=("'Floor'", "must match"))


@pytest.mark.parametrize("topic", ["tpark/+/m-water", "tpark/#"])
def test_mqtt_topic_with_wildcard(tmp_path: Path, topic: str) -> None:
    text = mutate(SMALL_PARK, ("          topic: tpark/u1/m-water\n          json_path: flow\n",
                               f"          topic: {topic}\n          json_path: flow\n"))
    expect_error(tmp_path, text, line=line_of(text, f"topic: {topic}"), field=POINT.format(m=4, p=1) + ".mqtt.topic",
                 contains=("wildcard", f"(value: {topic!r})"))


def test_mqtt_topic_and_path_bound_twice(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("          json_path: flow\n", "          json_path: energy.total\n"))
    second = [n for n, ln in enumerate(text.splitlines(), 1) if ln.strip() == "json_path: energy.total"][1]
    expect_error(tmp_path, text, line=second, field=POINT.format(m=4, p=1) + ".mqtt.json_path",
                 contains=("already bound", "'m-water.total'"))


def test_opcua_node_bound_twice(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("ns=2;s=m-grid.Export", "ns=2;s=m-grid.Import"))
    second = [n for n, ln in enumerate(text.splitlines(), 1) if "ns=2;s=m-grid.Import" in ln][1]
    expect_error(tmp_path, text, line=second, field=POINT.format(m=0, p=1) + ".opcua.node_id",
                 contains=("'ns=2;s=m-grid.Import'", "already bound", "'m-grid.import'"))


# --------------------------------------------------------------------------- mistakes: YAML and file


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("        unit: GJ\n", "        unit: GJ\n        unit: MJ\n"))
    expect_error(tmp_path, text, line=line_of(text, "unit: MJ"), field=POINT.format(m=3, p=0) + ".unit",
                 contains=("duplicate key",))


@pytest.mark.parametrize(
    ("new", "needle"),
    [
        ("    name: 上网: x\n", "上网: x"),  # mapping values are not allowed here
        ("\tname: 上网\n", "\tname"),  # tab indentation
        ("    name: '上网\n", "'上网"),  # unterminated quote: reported where the scanner gives up
    ],
    ids=["colon", "tab", "quote"],
)
def test_yaml_syntax_error(tmp_path: Path, new: str, needle: str) -> None:
    text = mutate(SMALL_PARK, ("    name: 上网\n", new))
    path = tmp_path / "park.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParkModelError) as info:
        load_park(path)
    [(line, field, _msg)] = info.value.errors
    assert field == "<yaml>"
    if needle == "'上网":
        # the scanner only notices at the end of the document; the line is still a real one
        assert line is not None and line >= line_of(text, needle)
    else:
        assert line == line_of(text, needle)
    assert f"{path}:{line}: <yaml>: " in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("      usage: non_production\n", "      usage: non_production\n      colour: red\n", METER.format(m=4) + ".colour"),
        ("  poll_interval_s: 2\n", "  poll_interval_s: 2\n  colour: red\n", "devices[1].colour"),
        ("          type: uint32\n      - id: m-gas.flow", "          type: uint32\n          colour: red\n"
         "      - id: m-gas.flow", POINT.format(m=1, p=0) + ".modbus.colour"),
        ("  grid_region: east_china\n", "  grid_region: east_china\n  colour: red\n", "park.colour"),
        ("    kind: export\n", "    kind: export\n    colour: red\n", "topology.nodes[4].colour"),
        ("    meter: m-steam\n", "    meter: m-steam\n    colour: red\n", "topology.edges[3].colour"),
    ],
    ids=["meter", "device", "binding", "park", "node", "edge"],
)
def test_unknown_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    text = mutate(SMALL_PARK, (old, new))
    expect_error(tmp_path, text, line=line_of(text, "colour: red"), field=field,
                 contains=("Extra inputs are not permitted", "(value: 'red')"))


def test_missing_field(tmp_path: Path) -> None:
    text = mutate(SMALL_PARK, ("      name: 车间水表\n", ""))
    expect_error(tmp_path, text, line=item_line(text, "m-water"), field=METER.format(m=4) + ".name",
                 contains=("Field required",))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "no-such-park.yaml"
    with pytest.raises(ParkModelError) as info:
        load_park(path)
    assert info.value.path == path
    assert info.value.errors == [(None, "<file>", "cannot read: No such file or directory")]
    assert f"{path}:?: <file>: cannot read" in str(info.value)


def test_document_not_a_mapping(tmp_path: Path) -> None:
    expect_error(tmp_path, "- just\n- a list\n", line=1, field="<document>", contains=("YAML mapping",))


def test_several_mistakes_reported_together(tmp_path: Path) -> None:
    text = mutate(
        SMALL_PARK,
        ("      device: dev-mq\n", "      device: dev-lora\n"),
        ("    meter: m-steam\n", "    meter: m-steam-9\n"),
    )
    exc = expect_error(tmp_path, text, line=line_of(text, "device: dev-lora"), field=METER.format(m=4) + ".device")
    expect_error(tmp_path, text, line=line_of(text, "meter: m-steam-9"), field="topology.edges[3].meter")
    assert len(exc.errors) == 2


# --------------------------------------------------------------------------- property: Modbus layouts

TYPES = sorted(MODBUS_TYPE_WORDS)
Slot = tuple[int, int, int, str]  # unit_id, function, address, type


def _park_with_layout(slots: list[Slot]) -> str:
    """SMALL_PARK with m-steam's points replaced by one point per slot (first is the counter)."""
    data = yaml.safe_load(SMALL_PARK)
    meters = data["enterprises"][0]["units"][0]["meters"]
    for meter in meters:
        if meter["id"] == "m-gas":  # move it out of the way of the generated registers
            for point in meter["points"]:
                point["modbus"]["unit_id"] = 200
        if meter["id"] == "m-steam":
            meter["points"] = [
                {
                    "id": f"p{i:02d}",
                    "kind": "counter" if i == 0 else "rate",
                    "unit": "t" if i == 0 else "t/h",
                    "modbus": {"unit_id": unit_id, "function": function, "address": address, "type": type_},
                }
                for i, (unit_id, function, address, type_) in enumerate(slots)
            ]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _overlapping(slots: list[Slot]) -> set[str]:
    """Ids of the points whose registers overlap another point's (brute force)."""
    involved = set()
    for i, (u1, f1, a1, t1) in enumerate(slots):
        for j, (u2, f2, a2, t2) in enumerate(slots):
            same_registers = i < j and (u1, f1) == (u2, f2)
            if same_registers and a1 <= a2 + MODBUS_TYPE_WORDS[t2] - 1 and a2 <= a1 + MODBUS_TYPE_WORDS[t1] - 1:
                involved |= {f"p{i:02d}", f"p{j:02d}"}
    return involved


@st.composite
def packed_layouts(draw: st.DrawFn) -> list[Slot]:
    """Non-overlapping layouts: per (unit, function) registers are packed with random gaps."""
    n = draw(st.integers(1, 10))
    keys = draw(st.lists(st.sampled_from([(1, 3), (1, 4), (2, 3), (247, 4)]), min_size=n, max_size=n))
    types = draw(st.lists(st.sampled_from(TYPES), min_size=n, max_size=n))
    gaps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    base = draw(st.sampled_from([0, 1000, 65536 - 10 * 7]))
    nxt: dict[tuple[int, int], int] = {}
    slots = []
    for key, type_, gap in zip(keys, types, gaps, strict=True):
        address = nxt.get(key, base) + gap
        nxt[key] = address + MODBUS_TYPE_WORDS[type_]
        slots.append((key[0], key[1], address, type_))
    return draw(st.permutations(slots))


any_layouts = st.lists(
    st.tuples(st.sampled_from([1, 2]), st.sampled_from([3, 4]), st.integers(0, 12), st.sampled_from(TYPES)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packed_layouts())
def test_property_non_overlapping_modbus_layouts_never_raise(slots: list[Slot]) -> None:
    assert not _overlapping(slots)
    park = parse_park(_park_with_layout(slots), Path("layout.yaml"))
    assert len(park.enterprises[0].units[0].meters[2].points) == len(slots)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_layouts)
def test_property_any_modbus_overlap_raises(slots: list[Slot]) -> None:
    involved = _overlapping(slots)
    text = _park_with_layout(slots)
    if not involved:
        parse_park(text, Path("layout.yaml"))
        return
    with pytest.raises(ParkModelError) as info:
        parse_park(text, Path("layout.yaml"))
    lines = text.splitlines()
    named: set[str] = set()
    for line, field, msg in info.value.errors:
        assert field.endswith(".modbus.address") and "overlap" in msg, (field, msg)
        assert line is not None and lines[line - 1].strip().startswith("address:")
        named |= {p for p in involved if repr(p) in msg}
    # every point that takes part in an overlap is named in some error
    assert named == involved
