"""The audit log: append-only, hash-chained, queryable, exportable, archived after retention.

Every record's ``hash`` is HMAC-SHA256 (audit key, see :mod:`lingtan_proxy.crypto`) over the previous
record's hash and the record's own fields, and ``seq`` runs 1, 2, 3 ... without gaps. The table
``audit_head`` holds the newest (seq, hash) and the archive anchor under a MAC of its own. So
:func:`verify` detects a changed field, a deleted or inserted row and a cut-off tail; without the key
nobody can recompute a consistent chain (GB/T 22239-2019 8.1.4.3 c: audit records protected against
unexpected deletion, modification or overwriting).

Appending is serialised by touching the head row first: on SQLite that takes the database write lock,
on PostgreSQL the row lock, and the head read after it is the latest committed one.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lingtan_proxy.models import AuditHead, AuditRecord

TZ = ZoneInfo("Asia/Shanghai")
GENESIS = "0" * 64
RESULTS = ("success", "failure", "denied")
EXPORT_COLUMNS = ("seq", "time", "username", "ip", "action", "object", "result", "detail", "hash")


def utcnow() -> datetime:
    """Naive UTC now (the tables store naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _canonical(seq: int, time: datetime, username: str, ip: str, action: str, obj: str, result: str,
               detail: str) -> bytes:
    return json.dumps([seq, time.isoformat(timespec="microseconds"), username, ip, action, obj, result, detail],
                      ensure_ascii=False, separators=(",", ":")).encode()


def record_hash(key: bytes, prev_hash: str, seq: int, time: datetime, username: str, ip: str, action: str,
                obj: str, result: str, detail: str) -> str:
    msg = prev_hash.encode() + b"\n" + _canonical(seq, time, username, ip, action, obj, result, detail)
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, hash_: str, anchor_seq: int, anchor_hash: str) -> str:
    return hmac.new(key, f"head|{seq}|{hash_}|{anchor_seq}|{anchor_hash}".encode(), hashlib.sha256).hexdigest()


def ensure_head(session: Session, key: bytes) -> None:
    """Create the chain's head row (genesis) once."""
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, hash=GENESIS, anchor_seq=0, anchor_hash=GENESIS,
                              mac=head_mac(key, 0, GENESIS, 0, GENESIS)))
        session.commit()


def canonical_detail(detail: dict[str, Any] | None) -> str:
    return json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def append(session: Session, key: bytes, *, username: str, ip: str, action: str, obj: str = "",
           result: str = "success", detail: dict[str, Any] | None = None, time: datetime | None = None) -> AuditRecord:
    """Append one record and commit. ``result`` is success, failure or denied."""
    if result not in RESULTS:
        raise ValueError(f"audit result {result!r} is not one of {', '.join(RESULTS)}")
    # take the write lock before reading the head (see module docstring)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    session.refresh(head)
    seq = head.seq + 1
    when = time or utcnow()
    det = canonical_detail(detail)
    username, ip, obj = username[:64], ip[:64], obj[:256]
    h = record_hash(key, head.hash, seq, when, username, ip, action, obj, result, det)
    rec = AuditRecord(seq=seq, time=when, username=username, ip=ip, action=action, object=obj, result=result,
                      detail=det, prev_hash=head.hash, hash=h)
    session.add(rec)
    head.seq, head.hash = seq, h
    head.mac = head_mac(key, seq, h, head.anchor_seq, head.anchor_hash)
    session.commit()
    return rec


@dataclass
class VerifyReport:
    checked: int = 0
    first_seq: int = 0
    last_seq: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_chain(key: bytes, rows: Iterable[AuditRecord | dict], prev_seq: int, prev_hash: str,
                 report: VerifyReport) -> tuple[int, str]:
    for r in rows:
        get = r.get if isinstance(r, dict) else r.__getattribute__
        seq, when = int(get("seq")), get("time")
        when = datetime.fromisoformat(when) if isinstance(when, str) else when
        report.checked += 1
        report.first_seq = report.first_seq or seq
        if seq != prev_seq + 1:
            report.problems.append(f"seq {prev_seq + 1}..{seq - 1}: missing (deleted rows)" if seq > prev_seq + 1
                                   else f"seq {seq}: out of order or duplicated after {prev_seq}")
        if get("prev_hash") != prev_hash:
            report.problems.append(f"seq {seq}: prev_hash does not match the hash of seq {prev_seq}")
        expect = record_hash(key, get("prev_hash"), seq, when, get("username"), get("ip"), get("action"),
                             get("object"), get("result"), get("detail"))
        if not hmac.compare_digest(expect, get("hash")):
            report.problems.append(f"seq {seq}: contents altered (hash mismatch)")
        prev_seq, prev_hash = seq, get("hash")
    report.last_seq = prev_seq
    return prev_seq, prev_hash


def verify(session: Session, key: bytes) -> VerifyReport:
    """Walk the whole chain from the archive anchor to the head; every problem found is listed."""
    report = VerifyReport()
    head = session.get(AuditHead, 1)
    if head is None:
        report.problems.append("audit_head is missing: the chain has no anchor")
        return report
    if not hmac.compare_digest(head_mac(key, head.seq, head.hash, head.anchor_seq, head.anchor_hash), head.mac):
        report.problems.append("audit_head was altered (MAC mismatch)")
    rows = session.execute(select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=2000)).scalars()
    last_seq, last_hash = _check_chain(key, rows, head.anchor_seq, head.anchor_hash, report)
    if last_seq != head.seq or last_hash != head.hash:
        report.problems.append(f"the chain ends at seq {last_seq} but the head says seq {head.seq}: "
                               "rows at the end were deleted or the head was rewound")
    return report


# --------------------------------------------------------------------------- query and statistics

@dataclass(frozen=True)
class AuditFilter:
    start: datetime | None = None  # naive UTC, inclusive
    end: datetime | None = None  # naive UTC, exclusive
    username: str = ""
    action: str = ""  # exact, or a prefix ending in "." (e.g. "login.")
    result: str = ""
    text: str = ""  # substring of object or detail

    def apply(self, stmt):
        if self.start:
            stmt = stmt.where(AuditRecord.time >= self.start)
        if self.end:
            stmt = stmt.where(AuditRecord.time < self.end)
        if self.username:
            stmt = stmt.where(AuditRecord.username == self.username.lower())
        if self.action:
            stmt = stmt.where(AuditRecord.action.startswith(self.action) if self.action.endswith(".")
                              else AuditRecord.action == self.action)
        if self.result:
            stmt = stmt.where(AuditRecord.result == self.result)
        if self.text:
            like = f"%{self.text}%"
            stmt = stmt.where(AuditRecord.object.like(like) | AuditRecord.detail.like(like))
        return stmt


def query(session: Session, flt: AuditFilter, *, limit: int = 100, offset: int = 0) -> tuple[int, list[AuditRecord]]:
    """(number matching, one page of them newest first)."""
    total = session.execute(flt.apply(select(func.count(AuditRecord.id)))).scalar_one()
    rows = session.execute(flt.apply(select(AuditRecord)).order_by(AuditRecord.seq.desc())
                           .limit(limit).offset(offset)).scalars().all()
    return total, list(rows)


def iter_matching(session: Session, flt: AuditFilter) -> Iterator[AuditRecord]:
    stmt = flt.apply(select(AuditRecord)).order_by(AuditRecord.seq).execution_options(yield_per=2000)
    yield from session.execute(stmt).scalars()


def local_time(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC).astimezone(TZ)


def statistics(session: Session, flt: AuditFilter) -> dict[str, Any]:
    """Counts per user, per action and per day (Asia/Shanghai), with failure rates."""
    per_user: Counter[str] = Counter()
    per_user_fail: Counter[str] = Counter()
    per_action: Counter[str] = Counter()
    per_action_fail: Counter[str] = Counter()
    per_day: Counter[str] = Counter()
    per_day_fail: Counter[str] = Counter()
    stmt = flt.apply(select(AuditRecord.time, AuditRecord.username, AuditRecord.action, AuditRecord.result))
    total = failed = 0
    for when, user, action, result in session.execute(stmt.execution_options(yield_per=5000)):
        day = local_time(when).date().isoformat()
        bad = result != "success"
        total += 1
        failed += bad
        per_user[user] += 1
        per_action[action] += 1
        per_day[day] += 1
        if bad:
            per_user_fail[user] += 1
            per_action_fail[action] += 1
            per_day_fail[day] += 1

    def table(counts: Counter[str], fails: Counter[str], key: str) -> list[dict[str, Any]]:
        return [{key: k, "count": n, "failures": fails[k], "failure_rate": round(fails[k] / n, 4)}
                for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    return {"total": total, "failures": failed, "failure_rate": round(failed / total, 4) if total else 0.0,
            "by_user": table(per_user, per_user_fail, "username"),
            "by_action": table(per_action, per_action_fail, "action"),
            "by_day": sorted(table(per_day, per_day_fail, "day"), key=lambda r: r["day"])}


SECURITY_ACTIONS = ("login.locked", "login.failure", "mfa.", "user.", "role.", "password.", "token.create",
                    "token.revoke", "config.", "audit.")


def report(session: Session, flt: AuditFilter) -> dict[str, Any]:
    """The audit report: statistics, lockouts, privilege and security changes in the period."""
    stats = statistics(session, flt)
    notable = [r for r in iter_matching(session, flt)
               if r.action.startswith(SECURITY_ACTIONS) and r.action != "login.failure"]
    return {"period": {"start": flt.start.isoformat() if flt.start else None,
                       "end": flt.end.isoformat() if flt.end else None},
            "statistics": stats,
            "lockouts": sum(1 for r in notable if r.action == "login.locked"),
            "security_events": [row_dict(r) for r in notable[-500:]]}


# --------------------------------------------------------------------------- export and archive

def row_dict(r: AuditRecord) -> dict[str, Any]:
    return {"seq": r.seq, "time": local_time(r.time).isoformat(timespec="seconds"), "username": r.username,
            "ip": r.ip, "action": r.action, "object": r.object, "result": r.result, "detail": r.detail,
            "hash": r.hash}


def export_csv(rows: Iterable[AuditRecord]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(EXPORT_COLUMNS)
    for r in rows:
        d = row_dict(r)
        w.writerow([d[c] for c in EXPORT_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 Chinese text correctly


def export_xlsx(rows: Iterable[AuditRecord], stats: dict[str, Any] | None = None) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("audit")
    ws.append(list(EXPORT_COLUMNS))
    for r in rows:
        d = row_dict(r)
        ws.append([d[c] for c in EXPORT_COLUMNS])
    if stats is not None:
        for name, key in (("by_user", "username"), ("by_action", "action"), ("by_day", "day")):
            sheet = wb.create_sheet(name)
            sheet.append([key, "count", "failures", "failure_rate"])
            for row in stats[name]:
                sheet.append([row[key], row["count"], row["failures"], row["failure_rate"]])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


class ArchiveRefused(ValueError):
    """Archiving would remove records younger than the retention period."""


def archive(session: Session, key: bytes, *, before: datetime, out_dir: Path, retention_days: int,
            now: datetime | None = None) -> tuple[Path | None, int]:
    """Move records older than ``before`` (naive UTC) to a gzip JSON-lines file; (file, count).

    Records younger than ``retention_days`` are never archived. The file starts with a header line
    (anchor it continues from) and can be checked with :func:`verify_archive`; the chain in the table
    then continues from the last archived record (the new anchor).
    """
    now = now or utcnow()
    if before > now - timedelta(days=retention_days):
        raise ArchiveRefused(f"before {before.isoformat()} is within the {retention_days}-day retention period "
                             f"(earliest allowed cut-off {(now - timedelta(days=retention_days)).isoformat()})")
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    session.refresh(head)
    rows = session.execute(select(AuditRecord).where(AuditRecord.time < before).order_by(AuditRecord.seq)).scalars().all()
    if not rows:
        session.rollback()
        return None, 0
    # a contiguous prefix only: a late-timestamped row must not leave a hole in the chain
    last = rows[0].seq - 1
    prefix = []
    for r in rows:
        if r.seq != last + 1:
            break
        prefix.append(r)
        last = r.seq
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"audit-{prefix[0].seq:010d}-{prefix[-1].seq:010d}.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"anchor_seq": head.anchor_seq, "anchor_hash": head.anchor_hash}) + "\n")
        for r in prefix:
            f.write(json.dumps({"seq": r.seq, "time": r.time.isoformat(timespec="microseconds"),
                                "username": r.username, "ip": r.ip, "action": r.action, "object": r.object,
                                "result": r.result, "detail": r.detail, "prev_hash": r.prev_hash,
                                "hash": r.hash}, ensure_ascii=False) + "\n")
    session.execute(delete(AuditRecord).where(AuditRecord.seq <= prefix[-1].seq))
    head.anchor_seq, head.anchor_hash = prefix[-1].seq, prefix[-1].hash
    head.mac = head_mac(key, head.seq, head.hash, head.anchor_seq, head.anchor_hash)
    session.commit()
    return path, len(prefix)


def verify_archive(path: Path, key: bytes) -> VerifyReport:
    """Check an archive file's chain from its header anchor to its last record."""
    report = VerifyReport()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        rows = (json.loads(line) for line in f if line.strip())
        _check_chain(key, rows, int(header["anchor_seq"]), header["anchor_hash"], report)
    return report
