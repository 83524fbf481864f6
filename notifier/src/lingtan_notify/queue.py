"""The on-disk delivery queue (SQLAlchemy; SQLite under the state directory by default).

An accepted Grafana notification is one ``notify_notification`` row (the payload, as received) and one
``notify_delivery`` row per message to send (channel and target: a phone number, an e-mail address or a
robot), written in one transaction before the webhook is answered. Nothing is deleted: a delivery ends
``delivered`` or ``failed`` (after the configured attempts), and an operator can put a failed one back.

Delivery states: ``pending`` (due at ``next_attempt_at``) -> ``sending`` (claimed by a worker, which
leases it until ``next_attempt_at``; a worker that dies mid-send leaves it to be claimed again when
the lease ends) -> ``delivered`` | ``pending`` (retry later) | ``failed``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from lingtan.db import Base

STATES = ("pending", "sending", "delivered", "failed")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(t: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; every time stored here is UTC."""
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


class NotificationRow(Base):
    """One webhook call from Grafana, kept as received."""

    __tablename__ = "notify_notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    receiver: Mapped[str] = mapped_column(String(200), default="")
    group_key: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))  # firing | resolved (of the group)
    alert_count: Mapped[int] = mapped_column(Integer)
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AttachmentRow(Base):
    """A file sent with every e-mail of its notification (a report's XLSX and PDF), kept as received."""

    __tablename__ = "notify_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notify_notification.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    sha256: str
    data: bytes


class DeliveryRow(Base):
    """One message to one target on one channel, about one alert."""

    __tablename__ = "notify_delivery"
    __table_args__ = (Index("ix_notify_delivery_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notify_notification.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # sms | email | dingtalk | wecom
    target: Mapped[str] = mapped_column(String(320))  # phone, e-mail address or robot name
    group_name: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)  # alertname, severity, enterprise, status, fingerprint
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def as_dict(self) -> dict[str, Any]:
        """The operator's view of this delivery (``GET /api/v1/deliveries``)."""
        iso = lambda t: aware(t).isoformat() if t else None  # noqa: E731
        return {"id": self.id, "notification_id": self.notification_id, "channel": self.channel,
                "target": self.target, "group": self.group_name, "locale": self.locale, "status": self.status,
                "attempts": self.attempts, "last_error": self.last_error or None,
                "next_attempt_at": iso(self.next_attempt_at) if self.status in ("pending", "sending") else None,
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at),
                "delivered_at": iso(self.delivered_at), "subject": self.subject, "body": self.body, **self.meta}


@dataclass(frozen=True)
class DeliverySpec:
    """A message to queue."""

    channel: str
    target: str
    group_name: str
    locale: str
    subject: str
    body: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds the lease of; ``attempt`` counts this one (1 = first)."""

    id: int
    channel: str
    target: str
    subject: str
    body: str
    meta: dict[str, Any]
    attempt: int
    attachments: tuple[Attachment, ...] = ()


class DeliveryQueue:
    """Accepting, claiming and settling deliveries; every method is its own transaction."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def enqueue(self, payload: dict[str, Any], specs: list[DeliverySpec], remote_addr: str = "",
                attachments: tuple[Attachment, ...] = ()) -> tuple[int, int]:
        """Store a notification, its attachments and its deliveries (due now) durably; (notification id, deliveries)."""
        now = utcnow()
        with self.sessions.begin() as s:
            note = NotificationRow(received_at=now, receiver=str(payload.get("receiver") or "")[:200],
                                   group_key=str(payload.get("groupKey") or ""),
                                   status=str(payload.get("status") or ""),
                                   alert_count=len(payload.get("alerts") or []), remote_addr=remote_addr[:64],
                                   payload=payload)
            s.add(note)
            s.flush()
            s.add_all([AttachmentRow(notification_id=note.id, name=a.name, content_type=a.content_type, sha256=a.sha256,
                                     data=a.data) for a in attachments])
            s.add_all([DeliveryRow(notification_id=note.id, channel=d.channel, target=d.target,
                                   group_name=d.group_name, locale=d.locale, subject=d.subject, body=d.body,
                                   meta=d.meta, status="pending", attempts=0, created_at=now, next_attempt_at=now,
                                   updated_at=now) for d in specs])
            return note.id, len(specs)

    def claim_due(self, limit: int, lease_s: float) -> list[Claimed]:
        """Lease up to ``limit`` deliveries that are due (pending, or sending with an expired lease)."""
        now = utcnow()
        lease_end = now + dt.timedelta(seconds=lease_s)
        out: list[Claimed] = []
        with self.sessions() as s:
            rows = s.execute(select(DeliveryRow.id, DeliveryRow.status, DeliveryRow.next_attempt_at)
                             .where(DeliveryRow.status.in_(("pending", "sending")), DeliveryRow.next_attempt_at <= now)
                             .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id).limit(limit)).all()
        for row_id, status, due in rows:
            with self.sessions.begin() as s:  # compare-and-set: another worker may have claimed it meanwhile
                won = s.execute(update(DeliveryRow)
                                .where(DeliveryRow.id == row_id, DeliveryRow.status == status,
                                       DeliveryRow.next_attempt_at == due)
                                .values(status="sending", attempts=DeliveryRow.attempts + 1,
                                        next_attempt_at=lease_end, updated_at=now)).rowcount
                if won != 1:
                    continue
                d = s.get(DeliveryRow, row_id)
                assert d is not None
                files = s.scalars(select(AttachmentRow).where(AttachmentRow.notification_id == d.notification_id)
                                  .order_by(AttachmentRow.id)).all() if d.meta.get("report") else []
                out.append(Claimed(d.id, d.channel, d.target, d.subject, d.body, dict(d.meta), d.attempts,
                                   tuple(Attachment(f.name, f.content_type, f.sha256, f.data) for f in files)))
        return out

    def _settle(self, delivery_id: int, **values: Any) -> None:
        with self.sessions.begin() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id, DeliveryRow.status == "sending")
                      .values(updated_at=utcnow(), **values))

    def delivered(self, delivery_id: int) -> None:
        self._settle(delivery_id, status="delivered", delivered_at=utcnow(), last_error="")

    def retry_at(self, delivery_id: int, error: str, when: dt.datetime) -> None:
        self._settle(delivery_id, status="pending", next_attempt_at=when, last_error=error[:2000])

    def failed(self, delivery_id: int, error: str) -> None:
        self._settle(delivery_id, status="failed", last_error=error[:2000])

    def requeue(self, delivery_id: int) -> DeliveryRow | None:
        """Put a failed delivery back (attempts start again); None if there is no such delivery."""
        now = utcnow()
        with self.sessions.begin() as s:
            d = s.get(DeliveryRow, delivery_id)
            if d is None:
                return None
            if d.status == "failed":
                d.status, d.attempts, d.next_attempt_at, d.updated_at = "pending", 0, now, now
            return d

    def get(self, delivery_id: int) -> DeliveryRow | None:
        with self.sessions() as s:
            return s.get(DeliveryRow, delivery_id)

    def list(self, status: str | None = None, notification_id: int | None = None,
             limit: int = 100) -> list[DeliveryRow]:
        """Deliveries, newest first."""
        q = select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit)
        if status:
            q = q.where(DeliveryRow.status == status)
        if notification_id is not None:
            q = q.where(DeliveryRow.notification_id == notification_id)
        with self.sessions() as s:
            return list(s.execute(q).scalars())

    def counts(self) -> dict[str, int]:
        """Deliveries per state (every state present, zeros included)."""
        with self.sessions() as s:
            got = dict(s.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)).all())
        return {st: int(got.get(st, 0)) for st in STATES}

    def next_due(self) -> dt.datetime | None:
        """When the earliest pending (or leased) delivery falls due; None when there is none."""
        with self.sessions() as s:
            t = s.execute(select(func.min(DeliveryRow.next_attempt_at))
                          .where(DeliveryRow.status.in_(("pending", "sending")))).scalar_one_or_none()
        return aware(t)

    def notification(self, notification_id: int) -> NotificationRow | None:
        with self.sessions() as s:
            return s.get(NotificationRow, notification_id)
