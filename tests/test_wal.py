"""The store-and-forward log: ordering, commit, segment roll-over and crash recovery."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from lingtan_collectors.common.wal import Position, WriteAheadLog


def test_append_read_commit_in_order(tmp_path):
    wal = WriteAheadLog(tmp_path)
    wal.append([f"m v={i} {i}" for i in range(10)])
    wal.append([f"m v={i} {i}" for i in range(10, 15)])
    lines, pos = wal.read(7)
    assert lines == [f"m v={i} {i}" for i in range(7)]
    lines2, pos2 = wal.read(100)
    assert lines2 == [f"m v={i} {i}" for i in range(7, 15)]
    assert pos2 == wal.end
    wal.commit(pos)
    assert wal.pending_bytes() == sum(len(f"m v={i} {i}\n") for i in range(7, 15))
    wal.close()


def test_reopen_resumes_from_checkpoint(tmp_path):
    wal = WriteAheadLog(tmp_path)
    wal.append(["a f=1 1", "b f=2 2", "c f=3 3"])
    _, pos = wal.read(2)
    wal.commit(pos)
    wal.append(["d f=4 4"])
    wal.close()
    wal = WriteAheadLog(tmp_path)
    lines, _ = wal.read(10)
    assert lines == ["c f=3 3", "d f=4 4"]


def test_rewind_reads_uncommitted_again(tmp_path):
    wal = WriteAheadLog(tmp_path)
    wal.append(["a f=1 1", "b f=2 2"])
    assert wal.read(10)[0] == ["a f=1 1", "b f=2 2"]
    wal.rewind_reader()
    assert wal.read(10)[0] == ["a f=1 1", "b f=2 2"]


def test_segments_roll_and_are_deleted_after_commit(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    for i in range(50):
        wal.append([f"measurement field={i} {i}"])
    segs = sorted(tmp_path.glob("seg-*.lp"))
    assert len(segs) > 5
    got = []
    while True:
        lines, pos = wal.read(7)
        if not lines:
            break
        got += lines
        wal.commit(pos)
    assert got == [f"measurement field={i} {i}" for i in range(50)]
    assert len(list(tmp_path.glob("seg-*.lp"))) == 1  # only the tail remains
    assert wal.pending_bytes() == 0


def test_partial_line_from_a_crash_is_dropped(tmp_path):
    wal = WriteAheadLog(tmp_path)
    wal.append(["a f=1 1"])
    wal.close()
    seg = next(tmp_path.glob("seg-*.lp"))
    with open(seg, "ab") as f:
        f.write(b"b f=2")  # a crash in the middle of an append
    wal = WriteAheadLog(tmp_path)
    assert wal.read(10)[0] == ["a f=1 1"]
    wal.append(["c f=3 3"])
    assert wal.read(10)[0] == ["c f=3 3"]


def test_survives_sigkill_of_the_writing_process(tmp_path):
    """Lines appended (flushed to the OS) before SIGKILL are all there afterwards."""
    script = textwrap.dedent(f"""
        import os, signal
        from lingtan_collectors.common.wal import WriteAheadLog
        wal = WriteAheadLog({str(tmp_path)!r})
        for i in range(1000):
            wal.append([f"m v={{i}} {{i}}"])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    wal = WriteAheadLog(tmp_path)
    lines, _ = wal.read(5000)
    assert lines == [f"m v={i} {i}" for i in range(1000)]
    assert os.path.exists(tmp_path / "seg-00000001.lp")


def test_position_ordering():
    assert Position(1, 500) < Position(2, 0) < Position(2, 1)


def test_read_encoded_returns_whole_lines_across_segments(tmp_path):
    """Byte-bounded reads give every line once, in order, never a partial line."""
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    expected = [f"measurement,tag=t{'x' * (i % 13)} field={i} {i}" for i in range(60)]
    for i in range(0, 60, 3):
        wal.append(expected[i:i + 3])
    got: list[str] = []
    for max_bytes in (1, 37, 500, 10_000):  # 1 byte: still one whole line per read
        wal.rewind_reader()
        got = []
        while True:
            body, n, pos = wal.read_encoded(max_bytes)
            if not n:
                assert body == b""
                break
            assert body.endswith(b"\n") and body.count(b"\n") == n
            got += body.decode().splitlines()
        assert got == expected, max_bytes
        assert pos == wal.end
    wal.close()
