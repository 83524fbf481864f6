"""The collectors' one way into InfluxDB: a bounded in-memory queue in front of a
store-and-forward disk buffer, drained in order by one writer thread.

``Sink.submit(lines)`` appends the lines to the write-ahead log (durable against a
process crash) and, while the writer keeps up, also to a bounded in-memory queue so the
writer need not read them back from disk. When InfluxDB is unreachable or slow, the queue
fills up; the sink then stops queueing in memory and the writer replays from the disk
buffer, in order, until it has caught up. Nothing accepted is dropped: a batch InfluxDB
rejects as malformed is split until the offending lines are isolated; those go to
``rejected.lp`` with the server's reason and are counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from lingtan.influxdb import InfluxClient, InfluxError
from lingtan_collectors.common.wal import Position, WriteAheadLog

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """A write abandoned because the sink is stopping; its lines stay in the disk buffer."""


@dataclass
class SinkStats:
    accepted: int = 0
    written: int = 0
    batches: int = 0
    write_errors: int = 0
    rejected: int = 0
    last_write: float = 0.0  # unix time of the last successful write
    last_error: str = ""
    replaying: bool = False
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=2048))


class Sink:
    """Batched, ordered, crash-safe writer of line protocol to InfluxDB."""

    def __init__(
        self,
        client: InfluxClient,
        buffer_dir: Path,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        queue_size: int = 100_000,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 15.0,
        max_inflight: int = 2,
        on_rejected: Callable[[str, str], None] | None = None,
    ):
        self.client = client
        self.wal = WriteAheadLog(buffer_dir)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.queue_size = queue_size
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.max_inflight = max_inflight
        self.on_rejected = on_rejected
        self.stats = SinkStats()
        self._bytes_accepted = 0
        self._rejected_path = Path(buffer_dir) / "rejected.lp"
        # (encoded lines, line count, WAL position after them, time accepted)
        self._queue: deque[tuple[bytes, int, Position, float]] = deque()
        self._queued_lines = 0
        self._cond = threading.Condition()
        # start in replay mode when the log holds lines not yet committed (after a crash)
        self._disk_mode = self.wal.pending_bytes() > 0
        self.stats.replaying = self._disk_mode
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="influx-sink", daemon=True)

    # ------------------------------------------------------------------ producer side
    def start(self) -> Sink:
        self._thread.start()
        return self

    def submit(self, lines: list[str]) -> None:
        """Accept ``lines`` durably. Returns once they are in the disk buffer."""
        if not lines:
            return
        now = time.time()
        n = len(lines)
        with self._cond:
            pos, data = self.wal.append_encoded(lines)
            self.stats.accepted += n
            self._bytes_accepted += len(data)
            if not self._disk_mode:
                if self._queued_lines + n > self.queue_size:
                    # memory queue full: from here on the writer reads from the disk buffer
                    self._disk_mode = True
                    self.stats.replaying = True
                    self._queue.clear()
                    self._queued_lines = 0
                else:
                    self._queue.append((data, n, pos, now))
                    self._queued_lines += n
            self._cond.notify()

    @property
    def queue_depth(self) -> int:
        return self._queued_lines

    @property
    def buffer_bytes(self) -> int:
        return self.wal.pending_bytes()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything accepted so far is written; False on timeout."""
        target = self.wal.end
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.wal.committed >= target:
                return True
            with self._cond:
                self._cond.notify()
            time.sleep(0.01)
        return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Flush what can be flushed within ``timeout_s`` and stop the writer."""
        self.flush(timeout_s)
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.wal.close()

    # ------------------------------------------------------------------ writer side
    def _next_batch(self, idle_wait_s: float) -> tuple[bytes | list[str], int, Position, float | None] | None:
        """The next batch: encoded lines from the memory queue, or lines read back from disk."""
        with self._cond:
            if not self._disk_mode and not self._queue:
                self._cond.wait(idle_wait_s)
            if self._disk_mode:
                if self.wal.reader_position >= self.wal.end:
                    self._disk_mode = False  # caught up: back to the memory queue
                    self.stats.replaying = False
                    return None
            elif self._queue:
                # wait briefly for a fuller batch unless one is ready
                if self._queued_lines < self.batch_size:
                    first_t = self._queue[0][3]
                    wait = self.flush_interval_s - (time.time() - first_t)
                    if wait > 0 and not self._stop.is_set():
                        self._cond.wait(min(wait, idle_wait_s))
                if self._disk_mode:
                    return None
                chunks: list[bytes] = []
                n = 0
                pos = self.wal.reader_position
                first = self._queue[0][3] if self._queue else None
                while self._queue and n < self.batch_size:
                    data, count, pos, _ = self._queue.popleft()
                    self._queued_lines -= count
                    chunks.append(data)
                    n += count
                self.wal.seek_reader(pos)
                return b"".join(chunks), n, pos, first
            else:
                return None
        # replay from disk: about batch_size lines, sized by the average line accepted so far
        avg = self._bytes_accepted / self.stats.accepted if self.stats.accepted else 200.0
        body, n, pos = self.wal.read_encoded(max(4096, int(self.batch_size * avg)))
        return (body, n, pos, None) if n else None

    def _run(self) -> None:
        """Read batches in order, keep up to ``max_inflight`` writes going, commit in order.

        Several writes in flight let InfluxDB use more than one core; the commit position
        still only advances over a prefix of batches that are all written, so a crash
        replays from the first unfinished batch.
        """
        inflight: deque[tuple[Future, Position, float | None, int]] = deque()
        with ThreadPoolExecutor(self.max_inflight, thread_name_prefix="influx-write") as pool:
            while True:
                while inflight and inflight[0][0].done():
                    future, pos, first, n = inflight.popleft()
                    if future.exception() is not None:  # stopped while retrying: replay next start
                        return
                    self.wal.commit(pos)
                    now = time.time()
                    self.stats.written += n
                    self.stats.batches += 1
                    self.stats.last_write = now
                    if first is not None:
                        self.stats.latency_ms.append((now - first) * 1000.0)
                if self._stop.is_set() and not inflight:
                    return
                if len(inflight) >= self.max_inflight or (self._stop.is_set() and inflight):
                    wait([inflight[0][0]], timeout=0.1)
                    continue
                batch = self._next_batch(0.05 if inflight else self.flush_interval_s)
                if batch is None:
                    continue
                body, n, pos, first = batch
                inflight.append((pool.submit(self._write_until_done, body, n), pos, first, n))

    def _write_until_done(self, body: bytes | list[str], n: int) -> None:
        delay = self.retry_initial_s
        while True:
            try:
                self._write(body)
                return
            except InfluxError as exc:
                self.stats.write_errors += 1
                self.stats.last_error = str(exc)
                log.warning("InfluxDB write failed (%d lines kept in the disk buffer, retry in %.1fs): %s",
                            n, delay, exc)
                if self._stop.wait(delay):
                    raise _Stopped from exc
                delay = min(delay * 2, self.retry_max_s)

    def _write(self, lines: bytes | list[str]) -> None:
        """Write ``lines``; isolate and quarantine lines InfluxDB rejects as invalid."""
        try:
            self.client.write_lines(lines)
        except InfluxError as exc:
            if exc.retryable or exc.status in (401, 403, 404):
                raise  # server or credentials problem: keep the batch and retry later
            if isinstance(lines, bytes):
                lines = lines.decode("utf-8").split("\n")
                if lines and not lines[-1]:
                    lines.pop()
            if len(lines) == 1:
                self._quarantine(lines[0], str(exc))
                return
            mid = len(lines) // 2
            self._write(lines[:mid])
            self._write(lines[mid:])

    def _quarantine(self, line: str, reason: str) -> None:
        self.stats.rejected += 1
        with open(self._rejected_path, "a", encoding="utf-8") as f:
            f.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {reason}\n{line}\n")
        log.error("InfluxDB rejected a line, kept in %s: %s", self._rejected_path, reason)
        if self.on_rejected is not None:
            self.on_rejected(line, reason)
