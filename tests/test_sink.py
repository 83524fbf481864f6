"""The collectors' sink against a real influxd: batching, outage, rejection, crash replay."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

from lingtan.influxdb import InfluxClient
from lingtan_collectors.common.sink import Sink


@pytest.fixture
def db(influxd):
    """A fresh database name on the shared influxd (created by the test when it wants it)."""
    name = "t_" + uuid.uuid4().hex[:10]
    client = InfluxClient(influxd.url, name, influxd.user, influxd.password)
    yield client
    client.query(f'DROP DATABASE "{name}"', database="")


def _count(client: InfluxClient, measurement: str = "m") -> int:
    rows = client.rows(f'SELECT count("v") FROM "{measurement}"')
    return rows[0]["count"] if rows else 0


def _lines(n: int, start: int = 0) -> list[str]:
    return [f"m,k=a v={i}i {1_700_000_000_000_000_000 + i * 1000}" for i in range(start, start + n)]


def test_writes_in_batches(db, tmp_path):
    db.query(f'CREATE DATABASE "{db.database}"', database="")
    sink = Sink(db, tmp_path, batch_size=1000, flush_interval_s=0.05).start()
    for i in range(0, 10_000, 100):
        sink.submit(_lines(100, i))
    assert sink.flush(30)
    sink.stop()
    assert _count(db) == 10_000
    assert sink.stats.written == 10_000
    assert sink.stats.batches <= 20
    assert sink.buffer_bytes == 0


def test_outage_buffers_on_disk_and_replays_in_order(db, tmp_path):
    # the database does not exist yet: every write fails (HTTP 404) as if InfluxDB were away
    sink = Sink(db, tmp_path, batch_size=500, flush_interval_s=0.05, queue_size=1000,
                retry_initial_s=0.05, retry_max_s=0.2).start()
    for i in range(0, 5000, 50):
        sink.submit(_lines(50, i))
    assert not sink.flush(1.0)
    assert sink.stats.write_errors > 0
    assert sink.buffer_bytes > 0
    assert sink.stats.replaying  # the memory queue overflowed; the disk buffer holds the rest
    db.query(f'CREATE DATABASE "{db.database}"', database="")
    assert sink.flush(30)
    sink.stop()
    assert _count(db) == 5000
    values = [r["v"] for r in db.rows('SELECT "v" FROM "m"')]
    assert values == list(range(5000))  # in order, none missing, none twice


def test_rejected_lines_are_isolated_and_kept(db, tmp_path):
    db.query(f'CREATE DATABASE "{db.database}"', database="")
    rejected: list[str] = []
    sink = Sink(db, tmp_path, batch_size=100, flush_interval_s=0.05,
                on_rejected=lambda line, reason: rejected.append(line)).start()
    good = _lines(99)
    bad = 'm,k=a v="text" 1700000000000999000'  # field type conflict with the integer field v
    sink.submit(good[:50] + [bad] + good[50:])
    assert sink.flush(30)
    sink.stop()
    assert _count(db) == 99
    assert rejected == [bad]
    text = (tmp_path / "rejected.lp").read_text()
    assert bad in text and "conflict" in text


def test_sigkill_loses_nothing_accepted(db, influxd, tmp_path):
    """A collector killed with lines accepted but unwritten replays them after restart."""
    script = textwrap.dedent(f"""
        import os, signal
        from lingtan_collectors.common.sink import Sink
        from lingtan.influxdb import InfluxClient
        client = InfluxClient({influxd.url!r}, {db.database!r}, {influxd.user!r}, {influxd.password!r})
        sink = Sink(client, {str(tmp_path)!r}, batch_size=200, retry_initial_s=0.05).start()
        for i in range(0, 3000, 100):
            sink.submit([f"m,k=a v={{j}}i {{1_700_000_000_000_000_000 + j * 1000}}" for j in range(i, i + 100)])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    db.query(f'CREATE DATABASE "{db.database}"', database="")
    sink = Sink(db, tmp_path, batch_size=200).start()
    assert sink.stats.replaying
    assert sink.flush(30)
    sink.stop()
    assert [r["v"] for r in db.rows('SELECT "v" FROM "m"')] == list(range(3000))


def test_restart_after_partial_delivery_has_no_duplicates(db, tmp_path):
    db.query(f'CREATE DATABASE "{db.database}"', database="")
    sink = Sink(db, tmp_path, batch_size=100, flush_interval_s=0.05).start()
    sink.submit(_lines(1000))
    assert sink.flush(30)
    sink.stop()
    # a second life of the collector with the same buffer: nothing pending, nothing re-sent
    sink = Sink(db, tmp_path, batch_size=100).start()
    assert not sink.stats.replaying
    sink.submit(_lines(500, 1000))
    assert sink.flush(30)
    sink.stop()
    assert _count(db) == 1500
