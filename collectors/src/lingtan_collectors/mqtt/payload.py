"""Decoding of MQTT JSON payloads into line protocol, with ``parse_error`` records.

A device publishes one JSON object per message on a topic; every point bound to that topic
names the dotted ``json_path`` of its value, and the device names the ``timestamp_path`` of
the epoch-milliseconds timestamp shared by all values of the message::

    {"ts": 1714521600000, "energy": {"total": 1234.5}, "power": {"value": 12.5}}

What goes wrong is recorded, never raised (reason ``parse_error``, one record per affected
point so that every record carries its meter and point tags):

* payload not UTF-8 JSON, truncated, or not a JSON object: each point of the topic, detail
  names the topic and the first 80 bytes; timestamp = time of receipt;
* timestamp missing or not epoch milliseconds: each point of the topic, time of receipt;
* a point's field missing: that point, detail names the path; the message timestamp;
* a field that is not a number (``null``, an object ...): that point (from ``PointProcessor.good``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from lingtan.park.index import PointRef
from lingtan_collectors.common.quality import PointProcessor

#: accepted timestamp range in epoch ms (1973-03 .. 5138): catches epoch seconds and microseconds
TS_MIN_MS = 1e11
TS_MAX_MS = 1e14
_MISSING = object()


@dataclass(frozen=True)
class TopicBinding:
    """The points bound to one topic and the JSON path of each."""

    topic: str
    points: tuple[tuple[str, str, tuple[str, ...]], ...]  # (point id, dotted path, path keys)

    @property
    def point_ids(self) -> list[str]:
        return [pid for pid, _, _ in self.points]


def group_by_topic(refs: list[PointRef]) -> dict[str, TopicBinding]:
    """MQTT points of a device grouped by their exact topic, in model order."""
    grouped: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
    for ref in refs:
        b = ref.point.mqtt
        if b is not None:
            grouped.setdefault(b.topic, []).append((ref.id, b.json_path, tuple(b.json_path.split("."))))
    return {topic: TopicBinding(topic, tuple(points)) for topic, points in grouped.items()}


def lookup(doc: object, keys: tuple[str, ...]) -> object:
    """``doc[k1][k2]...``, or ``_MISSING`` when a key is absent or a level is not an object."""
    for key in keys:
        if not isinstance(doc, dict):
            return _MISSING
        doc = doc.get(key, _MISSING)
        if doc is _MISSING:
            return _MISSING
    return doc


def epoch_ms_to_ns(value: object) -> int | None:
    """Epoch milliseconds (JSON number) as epoch ns, exactly for integers; None if not plausible."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not TS_MIN_MS <= value < TS_MAX_MS:
        return None
    if isinstance(value, int):
        return value * 1_000_000
    whole = int(value)
    return whole * 1_000_000 + round((value - whole) * 1e6)


def _preview(payload: bytes) -> str:
    return repr(payload[:80])[2:-1] + ("..." if len(payload) > 80 else "")


class PayloadDecoder:
    """Turns the messages of one device into lines through its :class:`PointProcessor`."""

    def __init__(self, processor: PointProcessor, timestamp_path: str, topics: dict[str, TopicBinding]):
        self.processor = processor
        self.timestamp_path = timestamp_path
        self._ts_keys = tuple(timestamp_path.split("."))
        self.topics = topics

    def decode(self, topic: str, payload: bytes, received_ns: int | None = None) -> list[str]:
        """Lines (values and data-quality records) for one message; [] for a topic not bound."""
        binding = self.topics.get(topic)
        if binding is None:
            return []
        proc = self.processor
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            detail = f"topic {topic}: payload is not JSON ({exc.__class__.__name__}: {exc}): {_preview(payload)}"
            return proc.device_event("parse_error", received_ns or time.time_ns(), detail, binding.point_ids)
        if not isinstance(doc, dict):
            detail = f"topic {topic}: payload is a JSON {type(doc).__name__}, not an object: {_preview(payload)}"
            return proc.device_event("parse_error", received_ns or time.time_ns(), detail, binding.point_ids)
        raw_ts = lookup(doc, self._ts_keys)
        ts_ns = None if raw_ts is _MISSING else epoch_ms_to_ns(raw_ts)
        if ts_ns is None:
            what = "missing" if raw_ts is _MISSING else f"not epoch milliseconds: {raw_ts!r:.40}"
            detail = f"topic {topic}: timestamp {self.timestamp_path!r} {what}"
            return proc.device_event("parse_error", received_ns or time.time_ns(), detail, binding.point_ids)
        out: list[str] = []
        readings = []
        for point_id, path, keys in binding.points:
            value = lookup(doc, keys)
            if value is _MISSING:
                out += proc.bad(point_id, "parse_error", ts_ns, f"topic {topic}: field {path!r} missing")
            else:
                readings.append((point_id, value, ts_ns))
        return out + proc.good_many(readings) if out else proc.good_many(readings)
