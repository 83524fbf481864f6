"""Device representations of a value: raw numbers, counter roll-over and Modbus registers.

A simulated meter holds its state in canonical units. What a device puts on the wire is

* the raw value ``PointRef.raw_value(canonical)`` (the inverse of the collector's
  ``engineering_value``),
* for counters, wrapped the way the device wraps it, at the modulus of
  :func:`lingtan.park.counters.raw_modulus` (``rollover`` if set, else the register width:
  uint16 at 65 536, uint32 at 2**32; an int32 goes negative past 2**31 - 1),
* for Modbus, packed into 16-bit registers with the point's data type, word order and
  byte order (Telegraf's ABCD = big/big, CDAB = word little, BADC = byte little, DCBA = both).

:func:`decode_registers` is the exact inverse of :func:`encode_registers`; the server tests
use it to check every type/order combination of the demo park.
"""

from __future__ import annotations

import math
import struct

from lingtan.park.carriers import Kind
from lingtan.park.counters import raw_modulus
from lingtan.park.index import PointRef
from lingtan_collectors.modbus.model import REGISTER_BITS, ModbusBinding

STRUCT_FORMAT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f", "float64": "d"}
INTEGER_BITS = REGISTER_BITS
SIGNED = frozenset({"int16", "int32"})

Wire = int | float


def integer_range(type_: str) -> tuple[int, int]:
    """Smallest and largest value of a Modbus integer type."""
    bits = INTEGER_BITS[type_]
    if type_ in SIGNED:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def to_wire(ref: PointRef, canonical: float) -> Wire:
    """What the device reports for a canonical value: raw, wrapped, quantised to its type.

    Integer counters are floored (a register shows completed units) and wrap at their
    modulus; integer rates are rounded and saturate at the type's range; float32 values are
    rounded to single precision; other counters wrap at ``rollover``.
    """
    raw = ref.raw_value(canonical)
    p = ref.point
    if p.modbus is not None:
        type_ = p.modbus.type
        if type_ in INTEGER_BITS:
            if p.kind is Kind.counter:
                bits = INTEGER_BITS[type_]
                n = math.floor(raw) % int(raw_modulus(p) or 1 << bits)
                if type_ in SIGNED and n >= 1 << (bits - 1):
                    n -= 1 << bits
                return n
            lo, hi = integer_range(type_)
            return min(max(round(raw), lo), hi)
        if type_ == "float32":
            return float(struct.unpack(">f", struct.pack(">f", raw))[0])
        return float(raw)
    if p.kind is Kind.counter and p.rollover is not None:
        return float(raw % p.rollover)
    return float(raw)


def wire_to_canonical(ref: PointRef, wire: Wire) -> float:
    """Canonical value a collector computes from the wire value (no roll-over undone)."""
    return ref.engineering_value(float(wire))


def encode_registers(value: Wire, binding: ModbusBinding) -> list[int]:
    """Pack a raw value into 16-bit registers with the binding's type, word and byte order.

    >>> from lingtan_collectors.modbus.model import ModbusBinding
    >>> encode_registers(0x01020304, ModbusBinding(unit_id=1, function=3, address=0, type="uint32"))
    [258, 772]
    >>> encode_registers(0x01020304, ModbusBinding(unit_id=1, function=3, address=0, type="uint32",
    ...                                            word_order="little", byte_order="little"))
    [1027, 513]
    """
    data = struct.pack(">" + STRUCT_FORMAT[binding.type], value)
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if binding.byte_order == "little":
        words = [w[::-1] for w in words]
    if binding.word_order == "little":
        words.reverse()
    return [int.from_bytes(w, "big") for w in words]


def decode_registers(registers: list[int], binding: ModbusBinding) -> Wire:
    """Inverse of :func:`encode_registers`."""
    if len(registers) != binding.words:
        raise ValueError(f"{binding.type} needs {binding.words} registers, got {len(registers)}")
    words = [int(r).to_bytes(2, "big") for r in registers]
    if binding.word_order == "little":
        words.reverse()
    if binding.byte_order == "little":
        words = [w[::-1] for w in words]
    value = struct.unpack(">" + STRUCT_FORMAT[binding.type], b"".join(words))[0]
    return value if binding.type in INTEGER_BITS else float(value)
