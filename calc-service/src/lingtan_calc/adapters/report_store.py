"""The report archive (docs/analysis.md §8): every generated file kept, with its SHA-256.

Files live under ``<state dir>/reports/<entity>/<kind>/``; a row of ``calc_report`` records each
one. A report generated again (after a recalculation of its period, or on demand) is a new file
and a new row; the earlier row stays, marked ``superseded_by`` the new one, so nothing that was
sent is lost and every file can be checked against its hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lingtan.db import Base
from lingtan_calc.adapters.meter_events import local, utc

FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReportRow(Base):
    __tablename__ = "calc_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # day, month, year
    period: Mapped[str] = mapped_column(String(10), index=True)  # 2026-03-01, 2026-03, 2026
    period_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    lang: Mapped[str] = mapped_column(String(5))
    format: Mapped[str] = mapped_column(String(5))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    generated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    superseded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


def archive(session: Session, root: Path, meta: dict[str, Any], fmt: str, data: bytes, reason: str) -> ReportRow:
    """Write one report file (atomically) and record it; the same report's earlier file becomes superseded."""
    now = _now()
    folder = Path(root) / meta["entity"] / meta["kind"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{meta['period']}-{meta['lang']}-{now.strftime('%Y%m%dT%H%M%S%fZ')}.{fmt}"
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    row = ReportRow(entity=meta["entity"], kind=meta["kind"], period=meta["period"],
                    period_start=utc(meta["start"]), period_end=utc(meta["end"]),
                    lang=meta["lang"], format=fmt, path=str(path), sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                    reason=reason, generated_at=now)
    session.add(row)
    session.flush()
    for old in session.scalars(select(ReportRow).where(
            ReportRow.entity == row.entity, ReportRow.kind == row.kind, ReportRow.period == row.period,
            ReportRow.lang == row.lang, ReportRow.format == fmt, ReportRow.superseded_by.is_(None), ReportRow.id != row.id)):
        old.superseded_by = row.id
    session.commit()
    return row


def current_reports(session: Session, entity: str | None = None, kind: str | None = None,
                    include_superseded: bool = False) -> list[ReportRow]:
    q = select(ReportRow)
    if entity is not None:
        q = q.where(ReportRow.entity == entity)
    if kind is not None:
        q = q.where(ReportRow.kind == kind)
    if not include_superseded:
        q = q.where(ReportRow.superseded_by.is_(None))
    return list(session.scalars(q.order_by(ReportRow.period_start.desc(), ReportRow.id.desc())))


def overlapping(session: Session, start: dt.datetime, end: dt.datetime) -> list[ReportRow]:
    """Current reports whose period intersects ``[start, end)``."""
    return list(session.scalars(select(ReportRow).where(ReportRow.superseded_by.is_(None), ReportRow.period_start < utc(end),
                                                        ReportRow.period_end > utc(start))))


def as_dict(row: ReportRow) -> dict[str, Any]:
    return {"id": row.id, "entity": row.entity, "kind": row.kind, "period": row.period,
            "start": local(row.period_start).isoformat(), "end": local(row.period_end).isoformat(), "lang": row.lang, "format": row.format,
            "sha256": row.sha256, "size": row.size, "reason": row.reason, "generated_at": row.generated_at.isoformat(),
            "superseded_by": row.superseded_by, "file": f"/api/v1/reports/{row.id}/file"}
