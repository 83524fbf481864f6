"""Stored warnings and their notification outbox (docs/budget.md §4).

A warning is one row per (entity, rule, subject) while it lasts: the daily evaluation updates
its figures, raises or lowers its level, and marks it ``resolved`` when its rule no longer
fires; a later firing opens a new row, so the history stays. A new warning, a higher level and
a resolution each put one message in the outbox (``calc_warning_delivery``), which the scheduler
posts to the notifier as a Grafana-style alert; a notifier that cannot be reached leaves it
pending, due again after a back-off, like the reports' outbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lingtan.db import Base
from lingtan_calc.adapters.meter_events import local
from lingtan_calc.adapters.report_delivery import mark_failed, mark_retry  # noqa: F401 - the same outbox rules

LEVELS = ("info", "warning", "critical")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WarningRow(Base):
    __tablename__ = "calc_warning"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(100), index=True)
    rule: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="firing", index=True)  # firing | resolved
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    forecast: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    texts: Mapped[dict[str, str]] = mapped_column(JSON)  # summary_zh, summary_en, description_zh, description_en
    first_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    notified_level: Mapped[str] = mapped_column(String(10), default="")


class WarningDeliveryRow(Base):
    __tablename__ = "calc_warning_delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    warning_id: Mapped[int] = mapped_column(Integer, index=True)
    alert_status: Mapped[str] = mapped_column(String(10))  # firing | resolved
    level: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    notification_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deliveries: Mapped[int | None] = mapped_column(Integer, nullable=True)


def _queue(session: Session, row: WarningRow, alert_status: str, notify: bool) -> None:
    if notify:
        session.add(WarningDeliveryRow(warning_id=row.id, alert_status=alert_status, level=row.level,
                                       status="pending", next_attempt_at=_now(), created_at=_now()))
    row.notified_level = row.level


def store_evaluation(session: Session, entity: str, rules: set[str], found: list[dict[str, Any]],
                     notify: bool) -> dict[str, int]:
    """Apply one evaluation of ``entity``'s ``rules``: open, update, escalate or resolve its warnings.

    ``notify``: queue the messages (a notifier is configured). Returns the counts.
    """
    now = _now()
    firing = {(r.rule, r.subject): r for r in session.scalars(
        select(WarningRow).where(WarningRow.entity == entity, WarningRow.status == "firing",
                                 WarningRow.rule.in_(sorted(rules))))}
    counts = {"opened": 0, "updated": 0, "escalated": 0, "resolved": 0}
    seen = set()
    # one warning per rule and subject: of two found for the same, the higher level stands
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for w in found:
        key = (w["rule"], w["subject"])
        if key not in unique or LEVELS.index(w["level"]) > LEVELS.index(unique[key]["level"]):
            unique[key] = w
    for w in unique.values():
        key = (w["rule"], w["subject"])
        seen.add(key)
        row = firing.get(key)
        texts = {k: w[k] for k in ("summary_zh", "summary_en", "description_zh", "description_en")}
        if row is None:
            row = WarningRow(entity=entity, rule=w["rule"], subject=w["subject"], level=w["level"], status="firing",
                             value=float(w["value"]), threshold=float(w["threshold"]), unit=w["unit"],
                             forecast=w["forecast"], texts=texts, first_at=now, updated_at=now)
            session.add(row)
            session.flush()
            firing[key] = row
            _queue(session, row, "firing", notify)
            counts["opened"] += 1
            continue
        higher = LEVELS.index(w["level"]) > LEVELS.index(row.notified_level or row.level)
        row.level, row.value, row.threshold, row.unit = w["level"], float(w["value"]), float(w["threshold"]), w["unit"]
        row.forecast, row.texts, row.updated_at = w["forecast"], texts, now
        if higher:
            _queue(session, row, "firing", notify)
            counts["escalated"] += 1
        else:
            counts["updated"] += 1
    for key, row in firing.items():
        if key not in seen:
            row.status, row.resolved_at, row.updated_at = "resolved", now, now
            _queue(session, row, "resolved", notify)
            counts["resolved"] += 1
    session.commit()
    return counts


def listed(session: Session, entity: str | None, status: str | None, limit: int = 200) -> list[WarningRow]:
    q = select(WarningRow).order_by(WarningRow.id.desc()).limit(limit)
    if entity is not None:
        q = q.where(WarningRow.entity == entity)
    if status is not None:
        q = q.where(WarningRow.status == status)
    rows = list(session.scalars(q))
    return sorted(rows, key=lambda r: (r.status != "firing", -LEVELS.index(r.level), -r.id))


def due(session: Session, now: dt.datetime, limit: int = 50) -> list[WarningDeliveryRow]:
    return list(session.scalars(select(WarningDeliveryRow).where(WarningDeliveryRow.status == "pending",
                                                                   WarningDeliveryRow.next_attempt_at <= now)
                                .order_by(WarningDeliveryRow.id).limit(limit)))


def mark_sent(row: WarningDeliveryRow, notification_id: int | None, deliveries: int) -> None:
    row.status, row.sent_at, row.notification_id, row.deliveries = "sent", _now(), notification_id, deliveries
    row.attempts += 1
    row.last_error = ""


def as_dict(row: WarningRow, lang: str = "zh") -> dict[str, Any]:
    iso = lambda t: local(t).isoformat() if t is not None else None  # noqa: E731 - local() reads naive as UTC
    other = "en" if lang == "zh" else "zh"
    return {"id": row.id, "entity": row.entity, "rule": row.rule, "subject": row.subject, "level": row.level,
            "status": row.status, "value": row.value, "threshold": row.threshold, "unit": row.unit,
            "forecast": row.forecast,
            "summary": row.texts.get(f"summary_{lang}") or row.texts.get(f"summary_{other}", ""),
            "description": row.texts.get(f"description_{lang}") or row.texts.get(f"description_{other}", ""),
            "texts": row.texts, "first_at": iso(row.first_at), "updated_at": iso(row.updated_at),
            "resolved_at": iso(row.resolved_at)}
