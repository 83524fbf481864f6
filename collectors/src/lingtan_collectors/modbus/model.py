"""The Modbus TCP device and point binding of the park model (docs/park-model.md, "Devices")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lingtan.park.base import BindingBase, DeviceBase
from lingtan.park.protocols import BoundPoint, Issue, ProtocolSpec

#: 16-bit registers per value of each data type
MODBUS_TYPE_WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}
#: bits of the Modbus integer register types (a counter in one wraps at 2**bits)
REGISTER_BITS = {"int16": 16, "uint16": 16, "int32": 32, "uint32": 32}


class ModbusDevice(DeviceBase):
    protocol: Literal["modbus"]
    host: str | None = None  # default: settings.modbus_host
    port: int | None = Field(None, ge=1, le=65535)
    poll_interval_s: float = Field(5.0, gt=0, le=3600)
    timeout_s: float = Field(1.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)
    backoff_max_s: float = Field(60.0, gt=0)
    stale_after_s: float = Field(60.0, gt=0)

    @property
    def point_rate_hz(self) -> float:
        return 1.0 / self.poll_interval_s


class ModbusBinding(BindingBase):
    unit_id: int = Field(ge=0, le=247)
    function: Literal[3, 4]  # 3 = holding registers, 4 = input registers
    address: int = Field(ge=0, le=65535)
    type: Literal["int16", "uint16", "int32", "uint32", "float32", "float64"]
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"

    @property
    def words(self) -> int:
        return MODBUS_TYPE_WORDS[self.type]

    def integer_width(self) -> tuple[int, str] | None:
        bits = REGISTER_BITS.get(self.type)
        return None if bits is None else (bits, f"a {self.type} register")

    @model_validator(mode="after")
    def _fits(self) -> ModbusBinding:
        if self.address + self.words > 65536:
            raise ValueError(f"register range {self.address}..{self.address + self.words - 1} exceeds 65535")
        return self


def check_bindings(bound: list[BoundPoint]) -> list[Issue]:
    """No two points of one device, unit id and function code share a register."""
    spans_by_key: dict[tuple[str, int, int], list[tuple[int, int, str, tuple]]] = {}
    for device, point, ploc in bound:
        b = point.modbus
        spans_by_key.setdefault((device.id, b.unit_id, b.function), []).append(
            (b.address, b.address + b.words - 1, point.id, (*ploc, "modbus", "address")))
    errors: list[Issue] = []
    for (dev, unit_id, fc), spans in spans_by_key.items():
        spans.sort(key=lambda span: (span[0], span[1]))
        # compare each span with the one reaching furthest among those sorted before it; comparing only
        # neighbours misses e.g. 6..6 inside a float64 at 4..7 when a 5..5 sorts between them
        reach: tuple[int, int, str, tuple] | None = None
        for span in spans:
            b0, b1, p_b, loc_b = span
            if reach is not None and b0 <= reach[1]:
                a0, a1, p_a, _ = reach
                errors.append((loc_b, f"Modbus registers {b0}..{b1} of point {p_b!r} overlap {a0}..{a1} of point "
                               f"{p_a!r} (device {dev!r}, unit {unit_id}, function {fc})"))
            if reach is None or b1 > reach[1]:
                reach = span
    return errors


PROTOCOL = ProtocolSpec("modbus", ModbusDevice, ModbusBinding, rank=20, check_bindings=check_bindings)
