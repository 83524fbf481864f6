"""What every collector process shares: the park, the sink, one processor per device,
periodic health (``collector_stats``), stale checks and the status file read by
``lingtan status``."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

from lingtan.influxdb import InfluxClient, InfluxError
from lingtan.park.carriers import Kind
from lingtan.park.counters import register_step
from lingtan.park.index import PointRef, points_by_device
from lingtan.park.model import Park, Protocol
from lingtan.series import COLLECTOR_STATS, line
from lingtan.settings import Settings
from lingtan_collectors.common.quality import PointProcessor
from lingtan_collectors.common.sink import Sink

log = logging.getLogger(__name__)


def status_path(state_dir: Path, name: str) -> Path:
    return Path(state_dir) / "run" / f"{name}.status.json"


class CollectorRuntime:
    """Shared state of one collector process (one protocol, possibly several devices)."""

    def __init__(self, name: str, protocol: Protocol, park: Park, settings: Settings,
                 *, client: InfluxClient | None = None, stats_interval_s: float = 10.0):
        self.name = name
        self.protocol = protocol
        self.park = park
        self.settings = settings
        self.stats_interval_s = stats_interval_s
        self.devices = [d for d in park.devices if d.protocol is protocol]
        by_device = points_by_device(park)
        self.points: dict[str, list[PointRef]] = {d.id: by_device[d.id] for d in self.devices}
        self.processors = {
            d.id: PointProcessor(self.points[d.id], d.id, d.stale_after_s) for d in self.devices
        }
        self.client = client or InfluxClient.from_settings(settings)
        self.sink = Sink(
            self.client,
            Path(settings.state_dir) / "buffer" / name,
            batch_size=settings.write_batch_size,
            flush_interval_s=settings.write_flush_interval_s,
            queue_size=settings.memory_queue_size,
        )
        self.started = time.time()
        self._stop = threading.Event()
        self._health = threading.Thread(target=self._health_loop, name=f"{name}-health", daemon=True)

    def start(self) -> CollectorRuntime:
        self.seed_counters()
        self.sink.start()
        self._health.start()
        return self

    def seed_counters(self, window: str = "7d") -> int:
        """Give every counter its last stored reading, so that a drop across a restart of the collector
        (a gateway replaying an older value, a meter that restarted with it) is seen and recorded.
        InfluxDB unreachable: the counters start without one (logged), as on a first start."""
        counters = {r.id: (d, r) for d, refs in self.points.items() for r in refs if r.point.kind is Kind.counter}
        if not counters:
            return 0
        carriers = ", ".join(f'"{c}"' for c in sorted({r.carrier.value for _, r in counters.values()}))
        q = (f'SELECT last("total") FROM {carriers} WHERE "park" = \'{self.park.park.id}\' '
             f"AND \"protocol\" = '{self.protocol.value}' AND time > now() - {window} GROUP BY \"point\"")
        try:
            series = self.client.series(q, epoch="ns")
        except (InfluxError, OSError) as exc:
            log.warning("%s: last counter readings not read (%s); drops across this restart go unseen", self.name, exc)
            return 0
        seeded = 0
        for ser in series:
            pid = ser.get("tags", {}).get("point")
            if pid in counters and ser.get("values"):
                ts_ns, value = ser["values"][0][0], ser["values"][0][1]
                device, ref = counters[pid]
                raw = ref.raw_value(float(value))  # canonical -> raw does not round-trip exactly:
                # an integer register is whole; a float one is taken a few ulps low, so that the same
                # reading again is not a step back
                raw = round(raw) if register_step(ref) else raw - abs(raw) * 8 * sys.float_info.epsilon
                self.processors[device].seed_last(pid, raw, int(ts_ns))
                seeded += 1
        log.info("%s: %d counter(s) resume from their last stored reading", self.name, seeded)
        return seeded

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._health.is_alive():
            self._health.join(timeout_s)
        self.health_tick()
        self.sink.stop(timeout_s)
        self.write_status()

    def submit(self, lines: list[str]) -> None:
        self.sink.submit(lines)

    # ------------------------------------------------------------------ health
    def _health_loop(self) -> None:
        # the status file is cheap and read by `lingtan status`: refresh it often; stale checks
        # and the collector_stats series every stats_interval_s
        period = min(2.0, self.stats_interval_s)
        next_stats = time.monotonic() + self.stats_interval_s
        while not self._stop.wait(period):
            try:
                if time.monotonic() >= next_stats:
                    next_stats += self.stats_interval_s
                    self.health_tick()
                else:
                    self.write_status()
            except Exception:  # the health loop must never take the collector down
                log.exception("health tick failed")

    def health_tick(self) -> None:
        lines: list[str] = []
        for proc in self.processors.values():
            lines += proc.stale()
        s = self.sink.stats
        lat = sorted(s.latency_ms)
        fields: dict[str, float | int | str] = {
            "points_in": sum(p.points_in for p in self.processors.values()),
            "points_written": s.written,
            "accepted": s.accepted,
            "dq_events": sum(sum(p.counts.values()) for p in self.processors.values()),
            "queue_depth": self.sink.queue_depth,
            "buffer_bytes": self.sink.buffer_bytes,
            "write_errors": s.write_errors,
            "rejected": s.rejected,
            "lag_ms": lat[int(0.95 * (len(lat) - 1))] if lat else 0.0,
        }
        lines.append(line(COLLECTOR_STATS, {"park": self.park.park.id, "collector": self.name,
                                            "protocol": self.protocol.value}, fields, time.time_ns()))
        self.write_status()  # before submitting, so the status does not count its own stats line
        self.submit(lines)

    def write_status(self) -> None:
        s = self.sink.stats
        dq: dict[str, int] = {}
        for p in self.processors.values():
            for k, v in p.counts.items():
                dq[k] = dq.get(k, 0) + v
        status = {
            "name": self.name,
            "protocol": self.protocol.value,
            "pid": os.getpid(),
            "started": self.started,
            "updated": time.time(),
            "points_in": sum(p.points_in for p in self.processors.values()),
            "accepted": s.accepted,
            "written": s.written,
            "last_write": s.last_write,
            "last_error": s.last_error,
            "queue_depth": self.sink.queue_depth,
            "buffer_bytes": self.sink.buffer_bytes,
            "replaying": s.replaying,
            "data_quality": dq,
        }
        path = status_path(self.settings.state_dir, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1))
        os.replace(tmp, path)
