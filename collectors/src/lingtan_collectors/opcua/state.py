"""Per-point cursors and the batching of lines into ``runtime.submit``.

The OPC UA collector remembers, per point, the timestamp of the last value it emitted.
Two views exist:

``seen``      the last value handed to the batcher (in memory; drives duplicate filtering
              between a history back-fill and the live subscription);
``committed`` the last value whose lines ``runtime.submit`` accepted (durable in the sink's
              write-ahead log). Only this view is written to the cursor file, so a cursor on
              disk never points past data that could still be lost.

After a restart the collector history-reads every point from its committed cursor
(exclusive) to now, so values the server produced while the collector was down or
disconnected are not lost. Values seen twice (a crash between submit and the cursor save)
carry the same series key and timestamp and overwrite themselves in InfluxDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lingtan_collectors.common.runtime import CollectorRuntime

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def dt_to_ns(dt: datetime | None) -> int | None:
    """An OPC UA timestamp as epoch nanoseconds (naive datetimes are UTC); None for a missing one.

    OPC UA encodes "no timestamp" as the Windows file-time epoch (1601); that maps to None too.
    """
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    if dt.year <= 1601:
        return None
    return ((dt - EPOCH) // _US) * 1000


def ns_to_dt(ts_ns: int) -> datetime:
    """Epoch nanoseconds as an aware UTC datetime (microsecond resolution, rounded down)."""
    return EPOCH + timedelta(microseconds=ts_ns // 1000)


def cursor_path(runtime: CollectorRuntime) -> Path:
    """``<state_dir>/run/<runtime.name>.opcua-cursor.json``."""
    return Path(runtime.settings.state_dir) / "run" / f"{runtime.name}.opcua-cursor.json"


class CursorStore:
    """Per-point timestamps of the last emitted and the last submitted value, persisted as JSON.

    File layout: ``{"version": 1, "devices": {"<device>": {"<point>": <epoch ns>, ...}}}``.
    """

    def __init__(self, path: Path):
        self.path = path
        self.committed: dict[str, dict[str, int]] = self._load()
        self.seen: dict[str, dict[str, int]] = {dev: dict(points) for dev, points in self.committed.items()}
        self._dirty = False
        self._saved_at = 0.0

    def _load(self) -> dict[str, dict[str, int]]:
        try:
            data = json.loads(self.path.read_text())
            return {str(dev): {str(p): int(ts) for p, ts in points.items()}
                    for dev, points in data.get("devices", {}).items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, AttributeError) as exc:
            # a damaged cursor only costs the back-fill of one outage, never the collector
            log.error("ignoring unreadable OPC UA cursor file %s: %s", self.path, exc)
            return {}

    def seen_for(self, device_id: str) -> dict[str, int]:
        """The mutable ``point -> last emitted ns`` map of one device."""
        return self.seen.setdefault(device_id, {})

    def commit(self, marks: dict[tuple[str, str], int]) -> None:
        """Record that the lines up to these ``(device, point) -> ts`` marks were submitted."""
        for (dev, point), ts in marks.items():
            self.committed.setdefault(dev, {})[point] = ts
        self._dirty = self._dirty or bool(marks)

    def save(self, *, force: bool = False, min_interval_s: float = 1.0) -> bool:
        """Write the committed cursors atomically if changed (at most every ``min_interval_s``)."""
        now = time.monotonic()
        if not self._dirty or (not force and now - self._saved_at < min_interval_s):
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"version": 1, "devices": self.committed}, separators=(",", ":")))
        os.replace(tmp, self.path)
        self._dirty = False
        self._saved_at = now
        return True


class Batcher:
    """Collects lines for at most ``window_s`` or ``max_lines``, then makes one ``runtime.submit``.

    Runs entirely on the collector's event loop, so it needs no locks. The cursor of every
    point in a batch is committed only after ``submit`` returned (the lines are durable).
    """

    def __init__(self, runtime: CollectorRuntime, cursors: CursorStore, *, max_lines: int = 5000,
                 window_s: float = 0.1, cursor_save_interval_s: float = 1.0):
        self.runtime = runtime
        self.cursors = cursors
        self.max_lines = max_lines
        self.window_s = window_s
        self.cursor_save_interval_s = cursor_save_interval_s
        self.lines: list[str] = []
        self.marks: dict[tuple[str, str], int] = {}
        self.submitted_values = 0
        self._values = 0

    def add(self, device_id: str, point_id: str, lines: list[str], ts_ns: int) -> None:
        """Queue the lines of one value; submits when the batch is full."""
        self.lines.extend(lines)
        self.marks[(device_id, point_id)] = ts_ns
        self._values += 1
        if len(self.lines) >= self.max_lines:
            self.flush()

    def add_lines(self, lines: list[str]) -> None:
        """Queue lines that move no cursor (events not tied to a value, e.g. a node that cannot be monitored)."""
        self.lines.extend(lines)

    def flush(self) -> None:
        """Submit what is queued (blocking until it is in the write-ahead log), then commit cursors."""
        if not self.lines:
            return
        lines, marks, values = self.lines, self.marks, self._values
        self.lines, self.marks, self._values = [], {}, 0
        try:
            self.runtime.submit(lines)
        except BaseException:
            # not durable: rewind these points so the next (re)connect back-fills them again
            for dev, point in marks:
                seen = self.cursors.seen_for(dev)
                if point in self.cursors.committed.get(dev, {}):
                    seen[point] = self.cursors.committed[dev][point]
                else:
                    seen.pop(point, None)
            raise
        self.submitted_values += values
        self.cursors.commit(marks)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``window_s`` and save the cursors periodically until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.window_s)
            self.flush()
            self.cursors.save(min_interval_s=self.cursor_save_interval_s)
