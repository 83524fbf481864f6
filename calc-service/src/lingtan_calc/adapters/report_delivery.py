"""The outbox of the reports to e-mail (docs/analysis.md §8): one ``calc_report_delivery`` row per
generated report (its XLSX and PDF together), written when the report is archived and kept after it
is sent. A row is ``pending`` until the notifier has accepted it (``sent``, with the notifier's
notification id and how many e-mails it queued), or ``failed`` when the notifier refused it for good
(a 4xx that a retry cannot change). A notifier that cannot be reached leaves the row pending, due
again after a back-off, so no report is lost while the notifier is down.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lingtan.db import Base
from lingtan_calc.adapters.meter_events import local

STATES = ("pending", "sent", "failed")
#: the wait after a failed attempt n: BACKOFF_S × 2^(n-1), at most BACKOFF_MAX_S (a notifier restart takes
#: seconds, an SMTP outage hours: retry soon at first, then hourly)
BACKOFF_S, BACKOFF_MAX_S = 60.0, 3600.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReportDeliveryRow(Base):
    __tablename__ = "calc_report_delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_ids: Mapped[str] = mapped_column(Text)  # the calc_report rows sent together, "12,13"
    entity: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    period: Mapped[str] = mapped_column(String(10))
    lang: Mapped[str] = mapped_column(String(5))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    notification_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    emails: Mapped[int | None] = mapped_column(Integer, nullable=True)  # e-mails the notifier queued


def queue_delivery(session: Session, reports: list, reason: str) -> ReportDeliveryRow:
    """Put one generated report (its rows of ``calc_report``) in the outbox, due now."""
    first = reports[0]
    row = ReportDeliveryRow(report_ids=",".join(str(r.id) for r in reports), entity=first.entity, kind=first.kind,
                            period=first.period, lang=first.lang, reason=reason, status="pending", attempts=0,
                            next_attempt_at=_now(), created_at=_now())
    session.add(row)
    session.commit()
    return row


def due_deliveries(session: Session, now: dt.datetime, limit: int = 20) -> list[ReportDeliveryRow]:
    return list(session.scalars(select(ReportDeliveryRow).where(ReportDeliveryRow.status == "pending",
                                                                 ReportDeliveryRow.next_attempt_at <= now)
                                .order_by(ReportDeliveryRow.id).limit(limit)))


def mark_sent(row: ReportDeliveryRow, notification_id: int | None, emails: int) -> None:
    row.status, row.sent_at, row.notification_id, row.emails = "sent", _now(), notification_id, emails
    row.attempts += 1
    row.last_error = ""


def mark_retry(row, error: str) -> None:
    """A failed attempt of an outbox row (a report's or a warning's): due again after the back-off."""
    row.attempts += 1
    row.last_error = error[:2000]
    row.next_attempt_at = _now() + dt.timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (row.attempts - 1)))


def mark_failed(row, error: str) -> None:
    """An outbox row the notifier refused for good."""
    row.attempts += 1
    row.status, row.last_error = "failed", error[:2000]


def listed(session: Session, entity: str | None = None, status: str | None = None,
           limit: int = 100) -> list[ReportDeliveryRow]:
    q = select(ReportDeliveryRow).order_by(ReportDeliveryRow.id.desc()).limit(limit)
    if entity is not None:
        q = q.where(ReportDeliveryRow.entity == entity)
    if status is not None:
        q = q.where(ReportDeliveryRow.status == status)
    return list(session.scalars(q))


def as_dict(row: ReportDeliveryRow) -> dict:
    iso = lambda t: local(t).isoformat() if t is not None else None  # noqa: E731 - local() reads naive as UTC
    return {"id": row.id, "reports": [int(i) for i in row.report_ids.split(",") if i], "entity": row.entity,
            "kind": row.kind, "period": row.period, "lang": row.lang, "reason": row.reason, "status": row.status,
            "attempts": row.attempts, "last_error": row.last_error or None,
            "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
            "created_at": iso(row.created_at), "sent_at": iso(row.sent_at), "notification_id": row.notification_id,
            "emails": row.emails}
