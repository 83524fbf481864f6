"""The audit log's hash chain on SQLite and PostgreSQL: every alteration, deletion and truncation is found."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import delete, text, update

from lingtan.db import Base, make_engine, session_factory
from lingtan_proxy import audit
from lingtan_proxy.models import AuditHead, AuditRecord

KEY = b"k" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres")
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    factory = session_factory(engine)
    with factory() as s:
        audit.ensure_head(s, KEY)
    yield factory
    engine.dispose()


def fill(db, n: int = 5, start=None) -> None:
    with db() as s:
        for i in range(n):
            audit.append(s, KEY, username=f"u{i % 2}", ip="10.0.0.1", action="login.success" if i % 3 else "login.failure",
                         obj="", result="success" if i % 3 else "failure", detail={"i": i, "名称": "园区"},
                         time=(start + timedelta(days=i)) if start else None)


def test_intact_chain_verifies(db):
    fill(db, 7)
    with db() as s:
        rep = audit.verify(s, KEY)
    assert rep.ok, rep.problems
    assert (rep.checked, rep.first_seq, rep.last_seq) == (7, 1, 7)


def test_altered_field_is_detected(db):
    fill(db)
    with db() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(result="success"))
        s.commit()
        rep = audit.verify(s, KEY)
    assert not rep.ok
    assert any("seq 4: contents altered" in p for p in rep.problems)


def test_deleted_row_is_detected(db):
    fill(db)
    with db() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq == 2))
        s.commit()
        rep = audit.verify(s, KEY)
    assert any("missing" in p for p in rep.problems)
    assert any("seq 3: prev_hash" in p for p in rep.problems)


def test_cut_off_tail_and_rewound_head_are_detected(db):
    fill(db)
    with db() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq >= 4))
        s.commit()
        assert any("ends at seq 3" in p for p in audit.verify(s, KEY).problems)
        # rewinding the head to the surviving row needs the key for its MAC
        last = s.execute(text("SELECT hash FROM audit_log WHERE seq = 3")).scalar_one()
        s.execute(update(AuditHead).values(seq=3, hash=last))
        s.commit()
        assert any("audit_head was altered" in p for p in audit.verify(s, KEY).problems)


def test_recomputed_chain_without_key_fails(db):
    """An attacker who rewrites a row and recomputes hashes with another key is still found."""
    fill(db, 3)
    with db() as s:
        rows = s.query(AuditRecord).order_by(AuditRecord.seq).all()
        prev = audit.GENESIS
        for r in rows:
            r.username = "attacker" if r.seq == 1 else r.username
            r.prev_hash = prev
            r.hash = audit.record_hash(b"x" * 32, prev, r.seq, r.time, r.username, r.ip, r.action, r.object, r.result,
                                       r.detail)
            prev = r.hash
        s.commit()
        assert not audit.verify(s, KEY).ok


def test_concurrent_appends_keep_one_chain(db):
    """Writers in several threads (as in several gunicorn workers) never fork the chain."""
    import threading

    def writer(k: int) -> None:
        with db() as s:
            for i in range(10):
                audit.append(s, KEY, username=f"w{k}", ip="", action="token.use", detail={"i": i})

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db() as s:
        rep = audit.verify(s, KEY)
    assert rep.ok, rep.problems
    assert rep.checked == 40


def test_statistics_and_filters(db):
    fill(db, 6)
    with db() as s:
        stats = audit.statistics(s, audit.AuditFilter())
        assert stats["total"] == 6 and stats["failures"] == 2
        assert stats["failure_rate"] == round(2 / 6, 4)
        assert {r["username"]: r["count"] for r in stats["by_user"]} == {"u0": 3, "u1": 3}
        total, rows = audit.query(s, audit.AuditFilter(action="login.", result="failure"))
        assert total == 2 and all(r.result == "failure" for r in rows)
        total, _ = audit.query(s, audit.AuditFilter(text="园区"))
        assert total == 6


def test_archive_respects_retention_and_keeps_the_chain(db, tmp_path):
    now = audit.utcnow()
    fill(db, 4, start=now - timedelta(days=400))  # days 400, 399, 398, 397 ago
    fill(db, 2)
    with db() as s:
        with pytest.raises(audit.ArchiveRefused):
            audit.archive(s, KEY, before=now - timedelta(days=10), out_dir=tmp_path, retention_days=180)
        s.rollback()
        path, n = audit.archive(s, KEY, before=now - timedelta(days=200), out_dir=tmp_path, retention_days=180)
        assert n == 4
        rep = audit.verify(s, KEY)
        assert rep.ok, rep.problems
        assert (rep.first_seq, rep.last_seq) == (5, 6)
    arch = audit.verify_archive(path, KEY)
    assert arch.ok and arch.checked == 4
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    rec = json.loads(lines[2])
    rec["username"] = "someone else"
    lines[2] = json.dumps(rec)
    bad = tmp_path / "bad.jsonl.gz"
    with gzip.open(bad, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    assert not audit.verify_archive(bad, KEY).ok


def test_exports(db):
    fill(db, 3)
    with db() as s:
        csv_bytes = audit.export_csv(audit.iter_matching(s, audit.AuditFilter()))
        assert csv_bytes.startswith("\ufeff".encode())
        lines = csv_bytes.decode("utf-8-sig").splitlines()
        assert lines[0].split(",")[:5] == ["seq", "time", "username", "ip", "action"]
        assert len(lines) == 4
        xlsx = audit.export_xlsx(audit.iter_matching(s, audit.AuditFilter()), audit.statistics(s, audit.AuditFilter()))
    import io

    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(xlsx))
    assert wb.sheetnames == ["audit", "by_user", "by_action", "by_day"]
    assert wb["audit"].max_row == 4


def test_cli_verify_exit_code(tmp_path):
    """`lingtan audit verify` exits 0 on an intact log and 2 after a row is altered."""
    from lingtan.settings import Settings
    from lingtan_proxy.cli import _context

    settings = Settings(state_dir=tmp_path)
    dbf, ctx = _context(settings)
    with dbf() as s:
        for i in range(3):
            ctx.audit(s, user="cli", ip="local", action="config.change", detail={"i": i})
    env = {"LINGTAN_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "lingtan.cli", "audit", "verify"], env=env, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: 3 records" in ok.stdout
    with dbf() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(detail='{"i":9}'))
        s.commit()
    bad = subprocess.run([sys.executable, "-m", "lingtan.cli", "audit", "verify"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2
    assert "seq 2: contents altered" in bad.stdout
