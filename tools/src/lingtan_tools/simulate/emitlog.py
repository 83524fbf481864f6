"""JSON-lines log of what the simulators emitted, for exactly-once tests.

One line per value that left a simulator with good quality, and one per fault:

``{"protocol": "mqtt", "point": "m-office-elec.total", "ts_ms": 1750204800000, "value": 1234.5, "raw": 1234.5}``
``{"fault": "silent", "meter": "m-pv-01", "points": [...], "ts_ms": ..., "until_ts_ms": ..., "injected": true}``

``value`` is what a correct collector stores: ``engineering_value(raw)`` in the canonical
unit, with counter roll-over *not* undone; counters also carry ``"unwrapped"``, the meter's
true total. MQTT values are logged when the broker acknowledges the message (PUBACK);
OPC UA values when the variable is written; Modbus values when they are loaded into the
registers at a tick (served, whether or not a client polls them; not while the point's
registers answer an exception or nothing). Lines are flushed as they are written, so a
test can read the file while the simulator runs. Thread-safe (MQTT acks arrive on
paho's network thread).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, TextIO

from lingtan_collectors.common.simulation import value_record
from lingtan_tools.simulate.faults import Fault

__all__ = ["EmissionLog", "value_record"]


class EmissionLog:
    """Append-only JSON-lines writer; a no-op when ``path`` is None."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a", encoding="utf-8")

    @property
    def enabled(self) -> bool:
        return self._fh is not None

    def write(self, records: list[dict[str, Any]]) -> None:
        """Write records as lines and flush."""
        if self._fh is None or not records:
            return
        text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
        with self._lock:
            if self._fh is not None:
                self._fh.write(text)
                self._fh.flush()

    def fault(self, fault: Fault, ts_ms: int, until_ts_ms: int) -> None:
        self.write([{
            "fault": fault.kind.value,
            fault.target_type: fault.target,
            "points": list(fault.points),
            "ts_ms": ts_ms,
            "until_ts_ms": until_ts_ms,
            "injected": fault.injected,
        }])

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
