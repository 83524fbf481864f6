"""Server-side login sessions.

The cookie ``__Host-lingtan`` (Secure, HttpOnly, SameSite=Strict, Path=/) holds 256 random bits; the
table holds their SHA-256, so a copy of the database does not yield a usable cookie. A new id is issued
at login and again when the second factor completes (no session fixation). Sessions end on logout, on
idle timeout, at the absolute lifetime, on "log out everywhere", and when a password is reset.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lingtan_proxy.audit import utcnow
from lingtan_proxy.crypto import sha256_hex
from lingtan_proxy.models import LoginSession
from lingtan_proxy.policy import SessionPolicy

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


@dataclass
class SessionInfo:
    """A live session as one request sees it, with the identity epoch read in the same query."""

    id_sha256: str
    user_id: int
    stage: str
    factors: list
    csrf_token: str
    created_at: datetime
    last_seen: datetime
    ip: str
    user_agent: str
    grafana_audited: bool
    epoch: int


class SessionReader:
    """Reads one session row and the identity epoch per request over a per-thread DB-API connection.

    This is the only database access of most proxied requests; going round SQLAlchemy's ORM and pool
    here halves the proxy's CPU per request (docs/benchmarks.md). The connections come from an engine
    of their own without a pool limit (NullPool), so they never starve the ORM sessions' pool.
    """

    def __init__(self, url: str):
        from sqlalchemy.pool import NullPool

        from lingtan.db import make_engine

        self.engine = make_engine(url, poolclass=NullPool)
        self.postgres = self.engine.dialect.name == "postgresql"
        mark = "%s" if self.engine.dialect.paramstyle in ("format", "pyformat") else "?"
        self.sql = ("SELECT id_sha256, user_id, stage, factors, csrf_token, created_at, last_seen, ip, user_agent, "
                    "grafana_audited, (SELECT value FROM auth_epoch WHERE id = 1), revoked_at "
                    f"FROM auth_sessions WHERE id_sha256 = {mark}")
        self._local = threading.local()

    def fetch(self, digest: str) -> tuple | None:
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self.engine.raw_connection()
                if self.postgres:
                    conn.driver_connection.autocommit = True  # a read, no transaction left open
                self._local.conn = conn
            try:
                cur = conn.cursor()
                try:
                    cur.execute(self.sql, (digest,))
                    return cur.fetchone()
                finally:
                    cur.close()
            except Exception:
                self._local.conn = None
                conn.invalidate()
                if attempt == 2:
                    raise
        return None


def _datetime(v) -> datetime | None:
    return datetime.fromisoformat(v) if isinstance(v, str) else v


def load(reader: SessionReader, s: Session, token: str | None, policy: SessionPolicy,
         now: datetime | None = None) -> SessionInfo | None:
    """The live session for cookie value ``token``; None when absent, revoked or timed out (one query)."""
    if not token or len(token) > 128:
        return None
    row = reader.fetch(sha256_hex(token))
    if row is None or row[-1] is not None:
        return None
    (sid, user_id, stage, factors, csrf, created, seen, ip, agent, audited, epoch, _revoked) = row
    info = SessionInfo(sid, int(user_id), stage, json.loads(factors) if isinstance(factors, str) else list(factors),
                       csrf, _datetime(created), _datetime(seen), ip, agent, bool(audited), int(epoch or 0))
    now = now or utcnow()
    if expired(info, policy, now):
        revoke(s, info)
        return None
    if now - info.last_seen >= TOUCH_EVERY:
        s.execute(update(LoginSession).where(LoginSession.id_sha256 == info.id_sha256).values(last_seen=now))
        s.commit()
        info.last_seen = now
    return info


def expired(row: LoginSession | SessionInfo, policy: SessionPolicy, now: datetime) -> bool:
    if now - row.created_at > timedelta(hours=policy.absolute_hours):
        return True
    if row.stage != "complete":
        return now - row.created_at > timedelta(minutes=policy.mfa_window_minutes)
    return now - row.last_seen > timedelta(minutes=policy.idle_minutes)


def rotate(s: Session, row: SessionInfo, *, stage: str, factors: list[str]) -> str:
    """End ``row`` and open a successor with a new id (same user, created now)."""
    revoke(s, row)
    return create(s, user_id=row.user_id, stage=stage, factors=factors, ip=row.ip, user_agent=row.user_agent)


def revoke(s: Session, row: SessionInfo | LoginSession) -> None:
    s.execute(update(LoginSession).where(LoginSession.id_sha256 == row.id_sha256).values(revoked_at=utcnow()))
    s.commit()


def mark_grafana_audited(s: Session, row: SessionInfo) -> None:
    s.execute(update(LoginSession).where(LoginSession.id_sha256 == row.id_sha256).values(grafana_audited=True))
    s.commit()
    row.grafana_audited = True


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
