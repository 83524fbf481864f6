"""The normalised InfluxDB schema: how a point becomes a series, and line-protocol encoding.

Documented in docs/schema.md. Both the Python collectors and the generated Telegraf
configuration map every point through :func:`series_key`, and a test checks they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lingtan.park.carriers import Kind
from lingtan.park.index import PointRef

#: field that holds a counter reading (canonical unit of the carrier, cumulative)
FIELD_COUNTER = "total"
#: field that holds an instantaneous rate reading (canonical rate unit of the carrier)
FIELD_RATE = "rate"
#: measurement with one record per data-quality event
DATA_QUALITY = "data_quality"
#: measurement with each collector's own health counters
COLLECTOR_STATS = "collector_stats"


@dataclass(frozen=True)
class SeriesKey:
    measurement: str
    tags: tuple[tuple[str, str], ...]  # sorted by key
    field: str

    def text(self) -> str:
        return series_text(self.measurement, dict(self.tags)) + " " + self.field


def point_tags(ref: PointRef) -> dict[str, str]:
    """Tags of a raw point: park, enterprise, unit, meter, point, carrier, protocol, role and its own tags."""
    tags = {
        "park": ref.park_id,
        "enterprise": ref.enterprise.id,
        "unit": ref.unit.id,
        "meter": ref.meter.id,
        "point": ref.point.id,
        "carrier": ref.carrier.value,
        "protocol": ref.protocol.value,
        **ref.point.tags,
    }
    if ref.point.role is not None:
        tags["role"] = ref.point.role.value
    return tags


def point_field(ref: PointRef) -> str:
    return FIELD_COUNTER if ref.point.kind is Kind.counter else FIELD_RATE


def series_key(ref: PointRef) -> SeriesKey:
    """Measurement (= carrier), sorted tags and field of a raw point."""
    return SeriesKey(ref.carrier.value, tuple(sorted(point_tags(ref).items())), point_field(ref))


# --------------------------------------------------------------------------- line protocol


def _escape_key(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _escape_measurement(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", r"\,").replace(" ", r"\ ")


def _field_value(v: float | int | str | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"field value {v!r} is not finite")
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', r"\"") + '"'


def series_text(measurement: str, tags: dict[str, str]) -> str:
    """Escaped ``measurement,tag=value,...`` with tags sorted (empty values dropped)."""
    parts = [_escape_measurement(measurement)]
    parts += [f"{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(tags.items()) if v != ""]
    return ",".join(parts)


def line(measurement: str, tags: dict[str, str], fields: dict[str, float | int | str | bool], ts_ns: int) -> str:
    """One line of InfluxDB line protocol with a nanosecond timestamp."""
    if not fields:
        raise ValueError("a line needs at least one field")
    body = ",".join(f"{_escape_key(k)}={_field_value(v)}" for k, v in fields.items())
    return f"{series_text(measurement, tags)} {body} {int(ts_ns)}"


class PointEncoder:
    """Pre-computes the series prefix of each point so encoding a reading is one f-string."""

    def __init__(self, refs: list[PointRef]):
        self._prefix = {r.id: f"{series_text(r.carrier.value, point_tags(r))} {point_field(r)}=" for r in refs}

    def prefix(self, point_id: str) -> str:
        """``measurement,tags field=`` of a point: a reading's line is prefix + value + timestamp."""
        return self._prefix[point_id]

    def encode(self, point_id: str, value: float, ts_ns: int) -> str:
        if not math.isfinite(value):
            raise ValueError(f"point {point_id}: value {value!r} is not finite")
        return f"{self._prefix[point_id]}{float(value)!r} {int(ts_ns)}"
