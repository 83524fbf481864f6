"""Server-side login sessions.

The cookie ``__Host-lingtan`` (Secure, HttpOnly, SameSite=Strict, Path=/) holds 256 random bits; the
table holds their SHA-256, so a copy of the database does not yield a usable cookie. A new id is issued
at login and again when the second factor completes (no session fixation). Sessions end on logout, on
idle timeout, at the absolute lifetime, on "log out everywhere", and when a password is reset.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lingtan.proxy.audit import utcnow
from lingtan.proxy.crypto import sha256_hex
from lingtan.proxy.models import LoginSession
from lingtan.proxy.policy import SessionPolicy

COOKIE = "__Host-lingtan"
STAGES = ("password", "change_password", "enrol", "complete")
# last_seen is written at most this often: idle timeouts are minutes, one write per request is waste
TOUCH_EVERY = timedelta(seconds=20)


def create(s: Session, *, user_id: int, stage: str, factors: list[str], ip: str, user_agent: str) -> str:
    """A new session; returns the cookie value (the only time it exists in clear)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    s.add(LoginSession(id_sha256=sha256_hex(token), user_id=user_id, stage=stage, factors=list(factors),
                       csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen=now, ip=ip[:64],
                       user_agent=user_agent[:256]))
    s.commit()
    return token


def load(s: Session, token: str | None, policy: SessionPolicy, now: datetime | None = None) -> LoginSession | None:
    """The live session for cookie value ``token``; None when absent, revoked or timed out."""
    if not token or len(token) > 128:
        return None
    row = s.get(LoginSession, sha256_hex(token))
    if row is None or row.revoked_at is not None:
        return None
    now = now or utcnow()
    if expired(row, policy, now):
        row.revoked_at = now
        s.commit()
        return None
    if now - row.last_seen >= TOUCH_EVERY:
        row.last_seen = now
        s.commit()
    return row


def expired(row: LoginSession, policy: SessionPolicy, now: datetime) -> bool:
    if now - row.created_at > timedelta(hours=policy.absolute_hours):
        return True
    if row.stage != "complete":
        return now - row.created_at > timedelta(minutes=policy.mfa_window_minutes)
    return now - row.last_seen > timedelta(minutes=policy.idle_minutes)


def rotate(s: Session, row: LoginSession, *, stage: str, factors: list[str]) -> str:
    """End ``row`` and open a successor with a new id (same user, created now)."""
    row.revoked_at = utcnow()
    s.commit()
    return create(s, user_id=row.user_id, stage=stage, factors=factors, ip=row.ip, user_agent=row.user_agent)


def revoke(s: Session, row: LoginSession) -> None:
    row.revoked_at = utcnow()
    s.commit()


def revoke_all(s: Session, user_id: int) -> int:
    res = s.execute(update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))
    s.commit()
    return res.rowcount or 0


def active_sessions(s: Session, user_id: int, policy: SessionPolicy) -> list[LoginSession]:
    now = utcnow()
    rows = s.execute(select(LoginSession).where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
                     .order_by(LoginSession.created_at.desc())).scalars().all()
    return [r for r in rows if not expired(r, policy, now)]
