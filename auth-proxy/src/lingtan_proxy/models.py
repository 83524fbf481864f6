"""Tables of the auth proxy: identities, roles, sessions, second factors, API tokens, certificates, audit.

All on the shared declarative :class:`lingtan.db.Base`, so SQLite (default) and PostgreSQL (compose)
both work. Secrets are never stored in clear: passwords as argon2id hashes, session ids, API tokens and
recovery codes as SHA-256 digests (they are 256-bit random, so a fast hash is enough), TOTP seeds
encrypted with the proxy's key (:mod:`lingtan_proxy.crypto`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from lingtan.db import Base


class User(Base):
    __tablename__ = "auth_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)  # stored lower-case: ids are unique
    display_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(256), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # account expiry (MLPS 8.2 c)
    park_scope: Mapped[bool] = mapped_column(Boolean, default=False)  # sees the park and every enterprise
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    roles: Mapped[list[Role]] = relationship(secondary="auth_user_roles", lazy="selectin")
    enterprises: Mapped[list[UserEnterprise]] = relationship(lazy="selectin", cascade="all, delete-orphan")
    totp: Mapped[TotpFactor | None] = relationship(lazy="selectin", cascade="all, delete-orphan")


class Role(Base):
    __tablename__ = "auth_roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title_zh: Mapped[str] = mapped_column(String(128), default="")
    title_en: Mapped[str] = mapped_column(String(128), default="")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    # second factor required for members (admins need it whatever this says)
    mfa_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # ... and it must be a client certificate: a cryptographic factor (GB/T 22239-2019 8.1.4.1 d, level 3)
    certificate_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # members only ever see the enterprises assigned to them, never the park totals
    enterprise_only: Mapped[bool] = mapped_column(Boolean, default=False)
    grafana_role: Mapped[str] = mapped_column(String(16), default="Viewer")  # Viewer | Editor | Admin | None
    permissions: Mapped[list[RolePermission]] = relationship(lazy="selectin", cascade="all, delete-orphan")

    @property
    def permission_names(self) -> set[str]:
        return {p.permission for p in self.permissions}


class RolePermission(Base):
    __tablename__ = "auth_role_permissions"

    role_id: Mapped[int] = mapped_column(ForeignKey("auth_roles.id", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(String(64), primary_key=True)


class UserRole(Base):
    __tablename__ = "auth_user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("auth_roles.id", ondelete="CASCADE"), primary_key=True)


class UserEnterprise(Base):
    __tablename__ = "auth_user_enterprises"

    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True)
    enterprise: Mapped[str] = mapped_column(String(64), primary_key=True)


class PasswordHistory(Base):
    __tablename__ = "auth_password_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class TotpFactor(Base):
    __tablename__ = "auth_totp"

    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    # RFC 6238 time step of the last accepted code: a code of this step or older is refused (replay)
    last_step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class RecoveryCode(Base):
    __tablename__ = "auth_recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), index=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class LoginFailure(Base):
    """One failed login (wrong password, unknown user, bad second factor): the lockout window counts these."""

    __tablename__ = "auth_login_failures"
    __table_args__ = (Index("ix_auth_fail_user_time", "username", "time"), Index("ix_auth_fail_ip_time", "ip", "time"),
                      Index("ix_auth_fail_time", "time"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime)
    username: Mapped[str] = mapped_column(String(64))  # as typed (lower-cased), known or not
    ip: Mapped[str] = mapped_column(String(64))


class LoginSession(Base):
    """A server-side login session; the cookie holds a random id, the table its SHA-256."""

    __tablename__ = "auth_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), index=True)
    # password -> (change_password | enrol | second_factor) -> complete
    stage: Mapped[str] = mapped_column(String(24))
    factors: Mapped[list] = mapped_column(JSON, default=list)  # e.g. ["password", "totp"]
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    grafana_audited: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiToken(Base):
    __tablename__ = "auth_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, shown in lists to tell tokens apart
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), index=True)
    enterprises: Mapped[list] = mapped_column(JSON)  # enterprise ids, or ["park"] for the park and all of them
    kinds: Mapped[list] = mapped_column(JSON)  # data kinds: energy, carbon, intensity, realtime, flows
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=60)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    owner: Mapped[User] = relationship(lazy="joined")


class Certificate(Base):
    """A client certificate issued by the park CA (``lingtan certs issue USER``)."""

    __tablename__ = "auth_certificates"

    serial: Mapped[str] = mapped_column(String(48), primary_key=True)  # hex
    user_id: Mapped[int] = mapped_column(ForeignKey("auth_users.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(256))
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    not_before: Mapped[datetime] = mapped_column(DateTime)
    not_after: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoke_reason: Mapped[str] = mapped_column(String(128), default="")
    # the PKCS#12 bundle (password-protected, then sealed with the proxy key) until its one download
    bundle_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditRecord(Base):
    """One audited operation; ``hash`` chains it to the one before (:mod:`lingtan_proxy.audit`)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("seq", name="uq_audit_seq"),
        Index("ix_audit_time", "time"),
        Index("ix_audit_action_object_time", "action", "object", "time"),
        Index("ix_audit_user_time", "username", "time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, 3, ... with no gap
    time: Mapped[datetime] = mapped_column(DateTime)  # UTC, microseconds
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object: Mapped[str] = mapped_column(String(256))
    result: Mapped[str] = mapped_column(String(16))  # success | failure | denied
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest (seq, hash) and the archive anchor, MACed: a truncated tail is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    anchor_seq: Mapped[int] = mapped_column(Integer, default=0)  # rows up to here were archived and removed
    anchor_hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class AuthEpoch(Base):
    """A counter bumped by every change to users, roles, permissions, scopes or factors.

    Each proxy process caches who a user is and what they may do; one integer read with the session
    row tells it whether that cache is still right (:func:`_bump_epoch`).
    """

    __tablename__ = "auth_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    value: Mapped[int] = mapped_column(Integer, default=0)


_IDENTITY_TABLES = (User, Role, RolePermission, UserRole, UserEnterprise, TotpFactor)


@event.listens_for(Session, "before_flush")
def _bump_epoch(session: Session, _context, _instances) -> None:
    """Any flush that touches an identity table also bumps the epoch, in the same transaction."""
    if any(isinstance(obj, _IDENTITY_TABLES) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.connection().execute(update(AuthEpoch).where(AuthEpoch.id == 1).values(value=AuthEpoch.value + 1))
