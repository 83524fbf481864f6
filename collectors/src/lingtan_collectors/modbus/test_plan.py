"""Request planning and register decoding (pure functions, no server)."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient

from lingtan_collectors.modbus.model import ModbusBinding
from lingtan_collectors.modbus.plan import (
    MAX_GAP,
    MAX_REGISTERS,
    DecodeError,
    Field,
    ReadRequest,
    assign_lanes,
    decode_registers,
    encode_value,
    plan_requests,
    requests_by_unit,
)

DT = AsyncModbusTcpClient.DATATYPE
PYMODBUS_TYPE = {"int16": DT.INT16, "uint16": DT.UINT16, "int32": DT.INT32, "uint32": DT.UINT32,
                 "float32": DT.FLOAT32, "float64": DT.FLOAT64}
ORDERS = [("big", "big"), ("little", "big"), ("big", "little"), ("little", "little")]  # ABCD CDAB BADC DCBA

# value -> registers in ABCD, CDAB, BADC, DCBA, worked out by hand from the big-endian bytes
HAND = {
    "int16": (-12345, [[0xCFC7], [0xCFC7], [0xC7CF], [0xC7CF]]),  # 0xCFC7
    "uint16": (0x1234, [[0x1234], [0x1234], [0x3412], [0x3412]]),
    "int32": (-123456789, [[0xF8A4, 0x32EB], [0x32EB, 0xF8A4], [0xA4F8, 0xEB32], [0xEB32, 0xA4F8]]),  # 0xF8A432EB
    "uint32": (0x12345678, [[0x1234, 0x5678], [0x5678, 0x1234], [0x3412, 0x7856], [0x7856, 0x3412]]),
    "float32": (1234.5, [[0x449A, 0x5000], [0x5000, 0x449A], [0x9A44, 0x0050], [0x0050, 0x9A44]]),  # 0x449A5000
    "float64": (math.pi, [[0x4009, 0x21FB, 0x5444, 0x2D18], [0x2D18, 0x5444, 0x21FB, 0x4009],  # 0x400921FB54442D18
                          [0x0940, 0xFB21, 0x4454, 0x182D], [0x182D, 0x4454, 0xFB21, 0x0940]]),
}


def swap_bytes(registers: list[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def values_of(type_: str) -> st.SearchStrategy:
    if type_ == "float32":
        return st.floats(width=32, allow_nan=False)
    if type_ == "float64":
        return st.floats(allow_nan=False)
    fmt = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I"}[type_]
    bits = struct.calcsize(fmt) * 8
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if fmt.islower() else (0, 2**bits - 1)
    return st.integers(lo, hi)


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("type_", sorted(HAND))
@pytest.mark.parametrize("order", range(4), ids=["ABCD", "CDAB", "BADC", "DCBA"])
def test_decode_hand_computed(type_: str, order: int) -> None:
    value, registers = HAND[type_]
    word_order, byte_order = ORDERS[order]
    assert decode_registers(registers[order], type_, word_order, byte_order) == value
    assert encode_value(value, type_, word_order, byte_order) == registers[order]


@pytest.mark.parametrize("type_", sorted(HAND))
@pytest.mark.parametrize("word_order", ["big", "little"])
@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_matches_pymodbus_on_hand_values(type_: str, word_order: str, byte_order: str) -> None:
    """pymodbus has only word_order; byte_order little = pymodbus' registers with each one byte-swapped."""
    value, _ = HAND[type_]
    theirs = AsyncModbusTcpClient.convert_to_registers(value, PYMODBUS_TYPE[type_], word_order=word_order)
    if byte_order == "little":
        theirs = swap_bytes(theirs)
    assert encode_value(value, type_, word_order, byte_order) == theirs


@pytest.mark.parametrize("type_", sorted(HAND))
@given(data=st.data())
def test_round_trip_against_pymodbus(type_: str, data: st.DataObject) -> None:
    value = data.draw(values_of(type_))
    word_order, byte_order = data.draw(st.sampled_from(ORDERS))
    registers = encode_value(value, type_, word_order, byte_order)
    assert decode_registers(registers, type_, word_order, byte_order) == value
    plain = swap_bytes(registers) if byte_order == "little" else registers
    assert AsyncModbusTcpClient.convert_from_registers(plain, PYMODBUS_TYPE[type_], word_order=word_order) == value
    assert AsyncModbusTcpClient.convert_to_registers(value, PYMODBUS_TYPE[type_], word_order=word_order) == plain


def test_decode_keeps_integers_exact_and_floats_special() -> None:
    assert decode_registers([0xFFFF, 0xFFFF], "uint32") == 2**32 - 1
    assert isinstance(decode_registers([0xFFFF, 0xFFFF], "uint32"), int)
    assert decode_registers([0xFFFF, 0xFFFF], "int32") == -1
    assert math.isnan(decode_registers([0x7FC0, 0x0000], "float32"))
    assert decode_registers([0x7FF0, 0, 0, 0], "float64") == math.inf


@pytest.mark.parametrize(("registers", "type_", "match"), [
    ([1], "uint32", "needs 2 register"),
    ([1, 2, 3], "float64", "needs 4 register"),
    ([0x10000], "uint16", "not a 16-bit"),
    ([-1], "int16", "not a 16-bit"),
    ([1, 2, 3, 4], "int64", "unknown Modbus data type"),
])
def test_decode_errors(registers: list[int], type_: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_registers(registers, type_)


def test_decode_bad_order_and_encode_overflow() -> None:
    with pytest.raises(DecodeError, match="word_order"):
        decode_registers([1, 2], "uint32", "middle")
    with pytest.raises(DecodeError, match="does not fit"):
        encode_value(70000, "uint16")


# --------------------------------------------------------------------------- planning


def b(address: int, type_: str = "uint16", unit_id: int = 1, function: int = 3, **kw: str) -> ModbusBinding:
    return ModbusBinding(unit_id=unit_id, function=function, address=address, type=type_, **kw)  # type: ignore[arg-type]


def spans(requests: list[ReadRequest]) -> list[tuple[int, int, int, int]]:
    return [(r.unit_id, r.function, r.address, r.count) for r in requests]


def test_contiguous_points_merge_and_split_at_125() -> None:
    points = [(f"p{i}", b(4 * i, "float64")) for i in range(32)]  # 128 registers
    reqs = plan_requests(points)
    assert spans(reqs) == [(1, 3, 0, 124), (1, 3, 124, 4)]  # a field is never split across requests
    assert len(reqs[0].fields) == 31 and all(r.count <= MAX_REGISTERS for r in reqs)
    many = plan_requests([(f"q{i}", b(i)) for i in range(1000)])
    assert [r.count for r in many] == [125] * 8
    assert [r.address for r in many] == list(range(0, 1000, 125))


def test_gaps_up_to_max_gap_are_bridged() -> None:
    assert MAX_GAP == 4
    reqs = plan_requests([("a", b(0)), ("b", b(5)), ("c", b(11)), ("d", b(12, "uint32"))])
    assert spans(reqs) == [(1, 3, 0, 6), (1, 3, 11, 3)]
    assert reqs[0].has_gaps and not reqs[1].has_gaps
    assert spans(plan_requests([("a", b(0)), ("b", b(5))], max_gap=0)) == [(1, 3, 0, 1), (1, 3, 5, 1)]


def test_units_and_functions_are_separate_requests() -> None:
    reqs = plan_requests([("h", b(0)), ("i", b(0, function=4)), ("u2", b(1, unit_id=2)), ("h1", b(1))])
    assert spans(reqs) == [(1, 3, 0, 2), (1, 4, 0, 1), (2, 3, 1, 1)]
    assert [r.point_ids for r in reqs] == [["h", "h1"], ["i"], ["u2"]]
    assert list(requests_by_unit(reqs)) == [1, 2]


def test_overlapping_fields_share_a_request() -> None:
    reqs = plan_requests([("a", b(0, "float32")), ("b", b(1))])
    assert spans(reqs) == [(1, 3, 0, 2)]
    assert [(f.point_id, v) for f, v in reqs[0].decode([0x449A, 0x5000])] == [("a", 1234.5), ("b", 0x5000)]


def test_segments_split_at_gaps_only() -> None:
    req = plan_requests([("a", b(0)), ("b", b(1, "uint32")), ("c", b(5)), ("d", b(10, "float32"))], max_gap=10)[0]
    assert (req.address, req.count) == (0, 12)
    assert [(s.address, s.count, s.point_ids) for s in req.segments()] == [
        (0, 3, ["a", "b"]), (5, 1, ["c"]), (10, 2, ["d"])]


def test_decode_request_with_orders_and_short_response() -> None:
    fields = (Field("x", 10, "int32", "little", "big"), Field("y", 12, "float32", "big", "little"))
    req = ReadRequest(1, 4, 10, 4, fields)
    assert [v for _, v in req.decode([0x32EB, 0xF8A4, 0x9A44, 0x0050])] == [-123456789, 1234.5]
    short = req.decode([0x32EB, 0xF8A4, 0x9A44])
    assert short[0][1] == -123456789
    assert isinstance(short[1][1], DecodeError) and "3 registers, 4 requested" in str(short[1][1])
    assert req.label() == "unit 1 fc4 10..13"


def test_plan_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="max_registers"):
        plan_requests([], max_registers=126)
    with pytest.raises(ValueError, match="max_gap"):
        plan_requests([], max_gap=-1)


def test_assign_lanes_balances_requests() -> None:
    assert assign_lanes({1: 1}, 4) == [[1]]
    assert assign_lanes({u: 1 for u in range(1, 9)}, 4) == [[1, 5], [2, 6], [3, 7], [4, 8]]
    lanes = assign_lanes({1: 10, 2: 1, 3: 1, 4: 1, 5: 7}, 2)
    assert lanes == [[1], [2, 3, 4, 5]]
    assert sorted(u for lane in assign_lanes({u: u for u in range(1, 20)}, 4) for u in lane) == list(range(1, 20))
    with pytest.raises(ValueError):
        assign_lanes({1: 1}, 0)
