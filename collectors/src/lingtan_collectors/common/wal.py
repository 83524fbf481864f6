"""Store-and-forward disk buffer: an append-only log of line-protocol lines.

Every line a collector accepts is appended here before the collector acknowledges it
(MQTT PUBACK, for instance). A single writer reads the log in order, writes batches to
InfluxDB and then commits its position in a checkpoint file. Segments wholly before the
checkpoint are deleted. After a crash (SIGKILL included) the writer resumes from the
checkpoint: lines written but not yet committed are sent again, which is harmless because
InfluxDB keeps one value per series key and timestamp.

Appends go to the operating system's page cache (survives a process crash); the writer
fsyncs before each commit so that committed positions never point past durable data.

Layout of ``<dir>``::

    seg-00000001.lp   lines, '\\n'-terminated, UTF-8
    seg-00000002.lp
    checkpoint.json   {"segment": 2, "offset": 1234}
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int


class WriteAheadLog:
    """Append-only segmented log with one reader and a persisted read checkpoint."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._checkpoint_path = self.dir / "checkpoint.json"
        self.committed = self._load_checkpoint()
        segments = self._segments()
        if segments and segments[-1] >= self.committed.segment:
            tail = segments[-1]
            self._repair_tail(tail)
        else:
            tail = self.committed.segment
        self._tail_no = tail
        self._tail = open(self._seg_path(tail), "ab")  # noqa: SIM115 - kept open for appends
        self._tail_size = self._tail.tell()
        self._reader_pos = self.committed
        self._reader_file = None
        self._reader_file_no = -1

    # ------------------------------------------------------------------ paths
    def _seg_path(self, n: int) -> Path:
        return self.dir / f"seg-{n:08d}.lp"

    def _segments(self) -> list[int]:
        return sorted(int(p.name[4:12]) for p in self.dir.glob("seg-*.lp"))

    def _load_checkpoint(self) -> Position:
        try:
            data = json.loads(self._checkpoint_path.read_text())
            return Position(int(data["segment"]), int(data["offset"]))
        except FileNotFoundError:
            segs = self._segments()
            return Position(segs[0] if segs else 1, 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"corrupt WAL checkpoint {self._checkpoint_path}: {exc}") from exc

    def _repair_tail(self, n: int) -> None:
        """Drop a partial last line left by a crash in the middle of an append."""
        path = self._seg_path(n)
        size = path.stat().st_size
        if size == 0:
            return
        with open(path, "rb+") as f:
            f.seek(max(0, size - 65536))
            chunk = f.read()
            if chunk.endswith(b"\n"):
                return
            cut = chunk.rfind(b"\n")
            new_size = size - len(chunk) + cut + 1 if cut >= 0 else max(0, size - len(chunk))
            f.truncate(new_size)

    # ------------------------------------------------------------------ writer side
    def append(self, lines: list[str]) -> Position:
        """Append lines; return the position after them. Thread-safe."""
        return self.append_encoded(lines)[0]

    def append_encoded(self, lines: list[str]) -> tuple[Position, bytes]:
        """Append lines; return the position after them and the bytes written.

        The bytes (each line ending in a newline) let a caller send the same lines on
        without encoding them a second time.
        """
        if not lines:
            return self.end, b""
        data = ("\n".join(lines) + "\n").encode("utf-8")
        with self._lock:
            if self._tail_size and self._tail_size + len(data) > self.segment_bytes:
                self._tail.close()
                self._tail_no += 1
                self._tail = open(self._seg_path(self._tail_no), "ab")  # noqa: SIM115
                self._tail_size = 0
            self._tail.write(data)
            self._tail.flush()
            self._tail_size += len(data)
            return Position(self._tail_no, self._tail_size), data

    @property
    def end(self) -> Position:
        with self._lock:
            return Position(self._tail_no, self._tail_size)

    # ------------------------------------------------------------------ reader side
    @property
    def reader_position(self) -> Position:
        return self._reader_pos

    def seek_reader(self, pos: Position) -> None:
        """Move the reader (used when the in-memory queue already delivered the lines)."""
        self._reader_pos = pos

    def read(self, max_lines: int, max_bytes: int = 16 * 1024 * 1024) -> tuple[list[str], Position]:
        """Read up to ``max_lines`` complete lines from the reader position."""
        lines: list[str] = []
        pos = self._reader_pos
        end = self.end
        while len(lines) < max_lines and pos < end:
            if pos.segment < end.segment and pos.offset >= self._segment_size(pos.segment):
                pos = Position(pos.segment + 1, 0)
                continue
            f = self._open_reader(pos.segment)
            f.seek(pos.offset)
            limit = end.offset - pos.offset if pos.segment == end.segment else None
            budget = max_bytes if limit is None else min(max_bytes, limit)
            chunk = f.read(budget)
            cut = chunk.rfind(b"\n")
            if cut < 0:
                break
            chunk = chunk[: cut + 1]
            parts = chunk.decode("utf-8").split("\n")[:-1]
            room = max_lines - len(lines)
            if len(parts) > room:
                parts = parts[:room]
                used = sum(len(p.encode("utf-8")) + 1 for p in parts)
            else:
                used = len(chunk)
            lines.extend(parts)
            pos = Position(pos.segment, pos.offset + used)
            if len(lines) >= max_lines or used >= max_bytes:
                break
        self._reader_pos = pos
        return lines, pos

    def read_encoded(self, max_bytes: int) -> tuple[bytes, int, Position]:
        """Read whole lines, about ``max_bytes`` of them (at least 64 KiB), from the reader position.

        Returns the bytes (each line ending in a newline), the number of lines, and the
        position after them. The lines are not decoded: they go to InfluxDB as they are.
        """
        chunks: list[bytes] = []
        n = 0
        size = 0
        pos = self._reader_pos
        end = self.end
        while size < max_bytes and pos < end:
            if pos.segment < end.segment and pos.offset >= self._segment_size(pos.segment):
                pos = Position(pos.segment + 1, 0)
                continue
            f = self._open_reader(pos.segment)
            f.seek(pos.offset)
            limit = end.offset - pos.offset if pos.segment == end.segment else None
            budget = max(max_bytes - size, 1 << 16)
            chunk = f.read(budget if limit is None else min(budget, limit))
            cut = chunk.rfind(b"\n")
            if cut < 0:
                if len(chunk) < budget:
                    break  # only a partial line left (cannot happen after _repair_tail)
                more = f.readline()  # one line longer than the budget
                chunk += more
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    break
            chunk = chunk[: cut + 1]
            chunks.append(chunk)
            n += chunk.count(b"\n")
            size += len(chunk)
            pos = Position(pos.segment, pos.offset + len(chunk))
        self._reader_pos = pos
        return b"".join(chunks), n, pos

    def _segment_size(self, n: int) -> int:
        try:
            return self._seg_path(n).stat().st_size
        except FileNotFoundError:
            return 0

    def _open_reader(self, n: int):
        if self._reader_file_no != n:
            if self._reader_file is not None:
                self._reader_file.close()
            self._reader_file = open(self._seg_path(n), "rb")  # noqa: SIM115
            self._reader_file_no = n
        return self._reader_file

    def rewind_reader(self) -> None:
        """Go back to the last commit (after a failed write, the batch is read again)."""
        self._reader_pos = self.committed

    def commit(self, pos: Position) -> None:
        """Persist ``pos`` as delivered; delete segments wholly before it."""
        with self._lock:
            tail_no = self._tail_no
            os.fsync(self._tail.fileno())
        tmp = self._checkpoint_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"segment": pos.segment, "offset": pos.offset}))
        os.replace(tmp, self._checkpoint_path)
        self.committed = pos
        for n in self._segments():
            if n < pos.segment and n < tail_no:
                if n == self._reader_file_no and self._reader_file is not None:
                    self._reader_file.close()
                    self._reader_file, self._reader_file_no = None, -1
                self._seg_path(n).unlink(missing_ok=True)

    def pending_bytes(self) -> int:
        """Bytes appended but not yet committed."""
        end, done = self.end, self.committed
        if end.segment == done.segment:
            return end.offset - done.offset
        total = self._segment_size(done.segment) - done.offset
        total += sum(self._segment_size(n) for n in range(done.segment + 1, end.segment))
        return total + end.offset

    def close(self) -> None:
        with self._lock:
            self._tail.close()
        if self._reader_file is not None:
            self._reader_file.close()
