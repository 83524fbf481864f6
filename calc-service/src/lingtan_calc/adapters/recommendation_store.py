"""Stored recommendations (docs/analysis.md §7): one row per entity, rule and subject.

A daily evaluation updates the evidence and estimates of the rows whose rule still fires and
opens new ones; an open row whose rule no longer fires is marked ``resolved``. A manager
acknowledges a row (it stays listed, with the estimate kept current) or dismisses it with a
reason; both record who and when, and the proxy writes them to the audit log. A dismissed row
stays dismissed while its rule keeps firing; it reopens only after it has resolved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lingtan.db import Base

STATUSES = ("open", "acknowledged", "dismissed", "resolved")
DECISIONS = {"acknowledge": "acknowledged", "dismiss": "dismissed"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RecommendationRow(Base):
    __tablename__ = "calc_recommendation"
    __table_args__ = (UniqueConstraint("entity", "rule", "subject", name="uq_calc_recommendation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(100), index=True)
    rule: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="open")
    saving_tce: Mapped[float] = mapped_column(Float, default=0.0)
    saving_cny: Mapped[float] = mapped_column(Float, default=0.0)
    saving_tco2: Mapped[float] = mapped_column(Float, default=0.0)
    method: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    evaluated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")


def store_evaluation(session: Session, entity: str, found: list[dict[str, Any]]) -> dict[str, int]:
    """Apply one evaluation of ``entity``: update, open, reopen or resolve its rows; returns the counts."""
    now = _now()
    rows = {(r.rule, r.subject): r for r in session.scalars(select(RecommendationRow).where(RecommendationRow.entity == entity))}
    counts = {"opened": 0, "updated": 0, "resolved": 0}
    seen = set()
    for rec in found:
        key = (rec["rule"], rec["subject"])
        seen.add(key)
        row = rows.get(key)
        if row is None:
            row = RecommendationRow(entity=entity, rule=rec["rule"], subject=rec["subject"], first_seen=now)
            session.add(row)
            counts["opened"] += 1
        elif row.status == "resolved":
            row.status, row.decided_by, row.decided_at, row.reason = "open", "", None, ""
            counts["opened"] += 1
        else:
            counts["updated"] += 1
        row.saving_tce, row.saving_cny, row.saving_tco2 = (float(rec["saving_tce"]), float(rec["saving_cny"]),
                                                           float(rec["saving_tco2"]))
        row.method, row.evidence, row.evaluated_at = rec["method"], _plain(rec["evidence"]), now
    for key, row in rows.items():
        if key not in seen and row.status != "resolved":
            row.status, row.evaluated_at = "resolved", now
            counts["resolved"] += 1
    session.commit()
    return counts


def _plain(value: Any) -> Any:
    """JSON-safe evidence (numpy numbers become floats)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return float(value) if hasattr(value, "item") and not isinstance(value, str) else value


class DecisionError(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def decide(session: Session, row_id: int, decision: str, author: str, reason: str) -> RecommendationRow:
    """Acknowledge or dismiss a recommendation; a dismissal needs its reason."""
    row = session.get(RecommendationRow, row_id)
    if row is None:
        raise LookupError(f"no recommendation {row_id}")
    if decision not in DECISIONS:
        raise DecisionError(f"decision {decision!r} is not acknowledge or dismiss", "decision")
    if decision == "dismiss" and not reason.strip():
        raise DecisionError("a dismissal states its reason", "reason")
    if row.status == "resolved":
        raise DecisionError(f"recommendation {row_id} is resolved: its rule no longer fires", "decision")
    row.status, row.decided_by, row.decided_at, row.reason = DECISIONS[decision], author, _now(), reason.strip()
    session.commit()
    return row


def listed(session: Session, entity: str | None, statuses: tuple[str, ...]) -> list[RecommendationRow]:
    q = select(RecommendationRow).where(RecommendationRow.status.in_(statuses))
    if entity is not None:
        q = q.where(RecommendationRow.entity == entity)
    return sorted(session.scalars(q), key=lambda r: (-r.saving_cny, -r.saving_tce, r.id))


def as_dict(row: RecommendationRow) -> dict[str, Any]:
    return {"id": row.id, "entity": row.entity, "rule": row.rule, "subject": row.subject, "status": row.status,
            "saving_tce": row.saving_tce, "saving_cny": row.saving_cny, "saving_tco2": row.saving_tco2,
            "method": row.method, "evidence": row.evidence, "first_seen": row.first_seen.isoformat(),
            "evaluated_at": row.evaluated_at.isoformat(), "decided_by": row.decided_by or None,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None, "reason": row.reason or None}
