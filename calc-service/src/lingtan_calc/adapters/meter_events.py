"""Meter events people record, and the quarantine of implausible intervals (SQL).

* A **meter replacement** (old register's final reading, new register's first reading, time)
  is recorded with author and reason; the accounting counts the interval across it as the old
  meter's remainder plus the new meter's start (docs/accounting.md §1). A replacement entered
  in error is withdrawn, never deleted.
* A **quarantined interval** is one whose consumption exceeds what the meter's capacity allows.
  The calc-service records it when it finds it; a person **confirms** it (the measured value
  counts) or **corrects** it (a stated quantity counts instead). An open one that a later
  calculation no longer finds (late readings split it) is marked ``cleared``.

:func:`adjustments` turns the current rows into the :class:`~lingtan_calc.core.accounting.plausibility.Adjustments`
the calculation applies. Every change is kept with who made it, when and why.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lingtan.db import Base
from lingtan_calc.core.accounting.consumption import Replacement
from lingtan_calc.core.accounting.plausibility import Adjustments, Correction, PointAdjustments

TZ = "Asia/Shanghai"
OPEN, CONFIRMED, CORRECTED, CLEARED = "open", "confirmed", "corrected", "cleared"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def utc(t) -> dt.datetime:
    """A UTC datetime for storage (SQLite keeps no zone: everything is stored as UTC, and a
    stored value read back without a zone is UTC)."""
    ts = pd.Timestamp(t)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def local(t: dt.datetime) -> pd.Timestamp:
    """A stored time as an Asia/Shanghai timestamp (naive values are UTC)."""
    ts = pd.Timestamp(t)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts).tz_convert(TZ)


class MeterReplacementRow(Base):
    __tablename__ = "calc_meter_replacement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    point: Mapped[str] = mapped_column(String(100), index=True)
    meter: Mapped[str] = mapped_column(String(100))
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    old_final: Mapped[float] = mapped_column(Float)
    new_initial: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    withdrawn_by: Mapped[str] = mapped_column(String(200), default="")
    withdrawn_reason: Mapped[str] = mapped_column(Text, default="")

    def as_dict(self) -> dict:
        return {"id": self.id, "point": self.point, "meter": self.meter, "time": local(self.time).isoformat(),
                "old_final": self.old_final, "new_initial": self.new_initial, "unit": self.unit,
                "author": self.author, "reason": self.reason, "recorded_at": local(self.recorded_at).isoformat(),
                "active": self.active, "withdrawn_by": self.withdrawn_by, "withdrawn_reason": self.withdrawn_reason}


class QuarantineRow(Base):
    __tablename__ = "calc_quarantine"
    __table_args__ = (UniqueConstraint("point", "start", "end", name="uq_calc_quarantine_interval"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    point: Mapped[str] = mapped_column(String(100), index=True)
    meter: Mapped[str] = mapped_column(String(100))
    enterprise: Mapped[str] = mapped_column(String(100), index=True)
    carrier: Mapped[str] = mapped_column(String(40))
    start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    measured: Mapped[float] = mapped_column(Float)
    limit: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(40), default="")
    detected_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    status: Mapped[str] = mapped_column(String(20), default=OPEN, index=True)
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    corrected_quantity: Mapped[float | None] = mapped_column(Float, nullable=True)
    history: Mapped[list[dict]] = mapped_column(JSON, default=list)  # every earlier decision

    def as_dict(self) -> dict:
        return {"id": self.id, "point": self.point, "meter": self.meter, "enterprise": self.enterprise,
                "carrier": self.carrier, "start": local(self.start).isoformat(), "end": local(self.end).isoformat(),
                "measured": self.measured, "limit": self.limit, "unit": self.unit, "event": self.event,
                "detected_at": local(self.detected_at).isoformat(), "status": self.status,
                "decided_by": self.decided_by,
                "decided_at": local(self.decided_at).isoformat() if self.decided_at else None,
                "reason": self.reason, "corrected_quantity": self.corrected_quantity, "history": self.history or []}


# --------------------------------------------------------------------------- replacements

def add_replacement(session: Session, *, point: str, meter: str, time: pd.Timestamp, old_final: float,
                    new_initial: float, unit: str, author: str, reason: str) -> MeterReplacementRow:
    row = MeterReplacementRow(point=point, meter=meter, time=utc(time), old_final=old_final,
                              new_initial=new_initial, unit=unit, author=author, reason=reason)
    session.add(row)
    session.commit()
    return row


def withdraw_replacement(session: Session, row_id: int, author: str, reason: str) -> MeterReplacementRow | None:
    row = session.get(MeterReplacementRow, row_id)
    if row is None:
        return None
    row.active, row.withdrawn_by, row.withdrawn_reason = False, author, reason
    session.commit()
    return row


def replacements(session: Session, point: str | None = None) -> list[MeterReplacementRow]:
    q = select(MeterReplacementRow).order_by(MeterReplacementRow.time, MeterReplacementRow.id)
    if point:
        q = q.where(MeterReplacementRow.point == point)
    return list(session.scalars(q))


# --------------------------------------------------------------------------- quarantine

def record_quarantines(session: Session, found: list[dict], units: dict[str, str],
                       covered: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> list[QuarantineRow]:
    """Store newly found intervals (one row per point and interval); return the new rows.

    ``covered`` is the range a calculation over every point just read: open rows inside it
    that it no longer found are marked cleared.
    """
    keys = set()
    new = []
    for q in found:
        key = (q["point"], utc(q["start"]), utc(q["end"]))
        if key in keys:
            continue
        keys.add(key)
        row = session.scalar(select(QuarantineRow).where(QuarantineRow.point == key[0], QuarantineRow.start == key[1],
                                                         QuarantineRow.end == key[2]))
        if row is None:
            row = QuarantineRow(point=q["point"], meter=q["meter"], enterprise=q["enterprise"], carrier=q["carrier"],
                                start=key[1], end=key[2], measured=q["measured"], limit=q["limit"],
                                unit=units.get(q["point"], ""), event=q.get("event", ""))
            session.add(row)
            session.flush()
            new.append(row)
        elif row.status in (OPEN, CLEARED):
            row.measured, row.limit, row.status = q["measured"], q["limit"], OPEN
    if covered is not None:
        lo, hi = utc(covered[0]), utc(covered[1])
        for row in session.scalars(select(QuarantineRow).where(QuarantineRow.status == OPEN,
                                                               QuarantineRow.start < hi, QuarantineRow.end > lo)):
            if (row.point, utc(row.start), utc(row.end)) not in keys:
                row.status = CLEARED
    session.commit()
    return new


def quarantines(session: Session, status: str | None = None, enterprise: str | None = None) -> list[QuarantineRow]:
    q = select(QuarantineRow).order_by(QuarantineRow.start, QuarantineRow.id)
    if status:
        q = q.where(QuarantineRow.status == status)
    if enterprise:
        q = q.where(QuarantineRow.enterprise == enterprise)
    return list(session.scalars(q))


def decide(session: Session, row: QuarantineRow, *, status: str, author: str, reason: str,
           quantity: float | None = None) -> QuarantineRow:
    """Confirm (``status`` confirmed) or correct (corrected, with ``quantity``) a quarantined interval.

    A later decision replaces an earlier one; the earlier one is kept in ``history``."""
    if row.decided_at is not None:
        row.history = [*(row.history or []), {"status": row.status, "by": row.decided_by, "reason": row.reason,
                                              "at": local(row.decided_at).isoformat(),
                                              "quantity": row.corrected_quantity}]
    row.status, row.decided_by, row.decided_at, row.reason = status, author, _now(), reason
    row.corrected_quantity = quantity if status == CORRECTED else None
    session.commit()
    return row


def adjustments(session: Session) -> Adjustments:
    """The active replacements, decisions and open quarantines, per point."""
    parts: dict[str, dict[str, list]] = {}

    def of(point: str) -> dict[str, list]:
        return parts.setdefault(point, {"replacements": [], "confirmed": [], "corrections": [], "quarantined": []})

    for r in session.scalars(select(MeterReplacementRow).where(MeterReplacementRow.active)):
        of(r.point)["replacements"].append(Replacement(local(r.time), r.old_final, r.new_initial))
    for q in session.scalars(select(QuarantineRow).where(QuarantineRow.status.in_([OPEN, CONFIRMED, CORRECTED]))):
        span = (local(q.start), local(q.end))
        if q.status == CONFIRMED:
            of(q.point)["confirmed"].append(span)
        elif q.status == CORRECTED:
            of(q.point)["corrections"].append(Correction(span[0], span[1], float(q.corrected_quantity or 0.0)))
        else:
            of(q.point)["quarantined"].append(span)
    return Adjustments({pid: PointAdjustments(tuple(p["replacements"]), tuple(p["confirmed"]),
                                              tuple(p["corrections"]), tuple(p["quarantined"]))
                        for pid, p in parts.items()})
