"""Identities and factors: users, passwords with lockout, TOTP (RFC 6238) and recovery codes.

Framework-free: every function takes an SQLAlchemy session and the :class:`ProxyContext`; the Flask
views (:mod:`lingtan_proxy.views_auth`) only translate requests. Every decision is audited here.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lingtan_proxy import audit
from lingtan_proxy.audit import utcnow
from lingtan_proxy.crypto import SecretBox, sha256_hex
from lingtan_proxy.models import (
    LoginFailure,
    PasswordHistory,
    RecoveryCode,
    Role,
    TotpFactor,
    User,
    UserEnterprise,
)
from lingtan_proxy.passwords import hash_password, needs_rehash, policy_problems, verify_password
from lingtan_proxy.policy import SecurityPolicy
from lingtan_proxy.rbac import check_user_roles

TOTP_PERIOD = 30  # RFC 6238 default time step [s]
TOTP_DIGITS = 6
# codes of the previous and the next step are accepted too: phone clocks drift (RFC 6238 section 5.2)
TOTP_SKEW_STEPS = 1
RECOVERY_CODES = 10
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")


@dataclass
class ProxyContext:
    """What the identity functions need besides a session."""

    policy: SecurityPolicy
    audit_key: bytes
    box: SecretBox
    issuer: str = "Lingtan"

    def audit(self, s: Session, *, user: str, ip: str, action: str, obj: str = "", result: str = "success",
              detail: dict | None = None) -> None:
        audit.append(s, self.audit_key, username=user, ip=ip, action=action, obj=obj, result=result, detail=detail)


class IdentityError(ValueError):
    """A request about identities that cannot be done; ``key`` is an i18n message key or a plain message."""

    def __init__(self, key: str, field: str = "", value: str = ""):
        super().__init__(key)
        self.key, self.field, self.value = key, field, value


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


def validate_username(name: str) -> str:
    name = normalise_username(name)
    if not 2 <= len(name) <= 64 or not set(name) <= USERNAME_CHARS:
        raise IdentityError(f"user name {name!r}: 2-64 characters from a-z 0-9 . _ - @", "username", name)
    return name


def find_user(s: Session, username: str) -> User | None:
    return s.execute(select(User).where(User.username == normalise_username(username))).scalar_one_or_none()


# --------------------------------------------------------------------------- lockout

def _failures_since(s: Session, column, value: str, since: datetime) -> tuple[int, datetime | None]:
    n, last = s.execute(select(func.count(LoginFailure.id), func.max(LoginFailure.time))
                        .where(column == value, LoginFailure.time >= since)).one()
    return int(n), last


def locked_until(s: Session, policy: SecurityPolicy, username: str, ip: str, now: datetime) -> datetime | None:
    """When the lock on this user name or source address ends, or None when not locked.

    A user name is locked once ``max_failures`` failures fall within ``window_s``; the lock lasts
    ``ban_s`` from the last failure. Unknown user names lock the same way, so locking tells nothing.
    """
    lp = policy.lockout
    since = now - timedelta(seconds=lp.window_s + lp.ban_s)
    until = None
    for column, value, limit in ((LoginFailure.username, username, lp.max_failures),
                                 (LoginFailure.ip, ip, lp.ip_max_failures)):
        times = s.execute(select(LoginFailure.time).where(column == value, LoginFailure.time >= since)
                          .order_by(LoginFailure.time)).scalars().all()
        # locked if some window of window_s holds `limit` failures and the ban after its last has not ended
        for i in range(limit - 1, len(times)):
            if times[i] - times[i - limit + 1] <= timedelta(seconds=lp.window_s):
                end = times[i] + timedelta(seconds=lp.ban_s)
                if end > now and (until is None or end > until):
                    until = end
    return until


def record_failure(s: Session, username: str, ip: str, now: datetime, policy: SecurityPolicy | None = None) -> None:
    """Count one failure; failures too old to matter for any lock are deleted (the audit log keeps them all)."""
    s.add(LoginFailure(time=now, username=username[:64], ip=ip[:64]))
    if policy is not None:
        horizon = now - timedelta(seconds=2 * (policy.lockout.window_s + policy.lockout.ban_s))
        s.execute(delete(LoginFailure).where(LoginFailure.time < horizon))
    s.commit()


def clear_failures(s: Session, username: str) -> None:
    s.execute(delete(LoginFailure).where(LoginFailure.username == username))
    s.commit()


@dataclass
class PasswordOutcome:
    user: User | None
    result: str  # ok | bad | locked | disabled | expired_account


def check_password(s: Session, ctx: ProxyContext, username: str, password: str, ip: str) -> PasswordOutcome:
    """First factor, with lockout. The outcome for the caller's eyes is only ok or not ok."""
    now = utcnow()
    name = normalise_username(username)[:64]
    user = find_user(s, name)
    # always one argon2 verification, known user or not (no timing oracle)
    good = verify_password(user.password_hash if user else None, password)
    until = locked_until(s, ctx.policy, name, ip, now)
    if until is not None:
        ctx.audit(s, user=name, ip=ip, action="login.locked", result="denied",
                  detail={"until": until.isoformat(timespec="seconds"), "known_user": user is not None})
        return PasswordOutcome(None, "locked")
    if user is None or not good:
        record_failure(s, name, ip, now, ctx.policy)
        ctx.audit(s, user=name, ip=ip, action="login.failure", result="failure",
                  detail={"reason": "bad_password" if user else "unknown_user"})
        if locked_until(s, ctx.policy, name, ip, now) is not None:
            ctx.audit(s, user=name, ip=ip, action="login.locked", result="denied",
                      detail={"after_failures": ctx.policy.lockout.max_failures})
        return PasswordOutcome(None, "bad")
    if user.disabled or (user.expires_at is not None and user.expires_at <= now):
        record_failure(s, name, ip, now)
        reason = "disabled" if user.disabled else "account_expired"
        ctx.audit(s, user=name, ip=ip, action="login.failure", result="failure", detail={"reason": reason})
        return PasswordOutcome(None, reason)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        s.commit()
    return PasswordOutcome(user, "ok")


# --------------------------------------------------------------------------- users and passwords

def one_time_password() -> str:
    """16 characters from all four classes: meets any allowed policy."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    core = "".join(secrets.choice(alphabet) for _ in range(13))
    return core + secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + secrets.choice("23456789") + secrets.choice("-_.!#")


def create_user(s: Session, ctx: ProxyContext, *, username: str, roles: list[str], actor: str, ip: str,
                display_name: str = "", email: str = "", enterprises: list[str] = (), park_scope: bool = False,
                expires_at: datetime | None = None, known_enterprises: set[str] | None = None) -> tuple[User, str]:
    """A new user with a one-time password (returned once; they must change it at first login)."""
    name = validate_username(username)
    if find_user(s, name) is not None:
        raise IdentityError(f"user name {name!r} is already taken", "username", name)
    role_rows = _roles(s, roles)
    check_user_roles(role_rows)
    _check_enterprises(enterprises, known_enterprises)
    password = one_time_password()
    now = utcnow()
    user = User(username=name, display_name=display_name, email=email, password_hash=hash_password(password),
                password_changed_at=now, must_change_password=True, created_at=now, created_by=actor,
                park_scope=park_scope, expires_at=expires_at, roles=role_rows,
                enterprises=[UserEnterprise(enterprise=e) for e in sorted(set(enterprises))])
    s.add(user)
    s.commit()
    ctx.audit(s, user=actor, ip=ip, action="user.create", obj=name,
              detail={"roles": sorted(roles), "enterprises": sorted(enterprises), "park_scope": park_scope})
    return user, password


def _roles(s: Session, names: list[str]) -> list[Role]:
    rows = s.execute(select(Role).where(Role.name.in_(list(names)))).scalars().all()
    missing = sorted(set(names) - {r.name for r in rows})
    if missing:
        raise IdentityError(f"unknown role(s) {', '.join(missing)}", "roles", ",".join(missing))
    return list(rows)


def _check_enterprises(enterprises, known: set[str] | None) -> None:
    if known is not None:
        unknown = sorted(set(enterprises) - known)
        if unknown:
            raise IdentityError(f"unknown enterprise(s) {', '.join(unknown)}", "enterprises", ",".join(unknown))


def update_user(s: Session, ctx: ProxyContext, user: User, *, actor: str, ip: str, roles: list[str] | None = None,
                enterprises: list[str] | None = None, park_scope: bool | None = None, disabled: bool | None = None,
                display_name: str | None = None, email: str | None = None,
                known_enterprises: set[str] | None = None) -> None:
    before = _user_snapshot(user)
    if roles is not None:
        role_rows = _roles(s, roles)
        check_user_roles(role_rows)
        user.roles = role_rows
    if enterprises is not None:
        _check_enterprises(enterprises, known_enterprises)
        user.enterprises = [UserEnterprise(enterprise=e) for e in sorted(set(enterprises))]
    for attr, value in (("park_scope", park_scope), ("disabled", disabled), ("display_name", display_name),
                        ("email", email)):
        if value is not None:
            setattr(user, attr, value)
    s.commit()
    after = _user_snapshot(user)
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changed:
        ctx.audit(s, user=actor, ip=ip, action="user.disable" if changed.get("disabled") == [False, True]
                  else "user.update", obj=user.username, detail=changed)


def _user_snapshot(user: User) -> dict:
    return {"roles": sorted(r.name for r in user.roles), "enterprises": sorted(e.enterprise for e in user.enterprises),
            "park_scope": user.park_scope, "disabled": user.disabled, "display_name": user.display_name,
            "email": user.email}


def reset_password(s: Session, ctx: ProxyContext, user: User, *, actor: str, ip: str) -> str:
    """A new one-time password (the user must change it); all their sessions end."""
    from lingtan_proxy.sessions import revoke_all

    password = one_time_password()
    _store_password(s, user, password)
    user.must_change_password = True
    s.commit()
    revoke_all(s, user.id)
    clear_failures(s, user.username)
    ctx.audit(s, user=actor, ip=ip, action="password.reset", obj=user.username)
    return password


def _store_password(s: Session, user: User, password: str) -> None:
    s.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash, changed_at=user.password_changed_at))
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()


def change_password(s: Session, ctx: ProxyContext, user: User, current: str, new: str, *, ip: str) -> list[str]:
    """Problems (i18n keys), or [] when the password was changed."""
    if not verify_password(user.password_hash, current):
        ctx.audit(s, user=user.username, ip=ip, action="password.change", result="failure",
                  detail={"reason": "wrong_current"})
        return ["pw_wrong_current"]
    history = s.execute(select(PasswordHistory.password_hash).where(PasswordHistory.user_id == user.id)
                        .order_by(PasswordHistory.changed_at.desc())).scalars().all()
    problems = policy_problems(new, ctx.policy.password, username=user.username,
                               previous_hashes=[user.password_hash, *history])
    if problems:
        ctx.audit(s, user=user.username, ip=ip, action="password.change", result="failure",
                  detail={"reason": problems})
        return problems
    _store_password(s, user, new)
    user.must_change_password = False
    s.commit()
    ctx.audit(s, user=user.username, ip=ip, action="password.change")
    return []


# --------------------------------------------------------------------------- TOTP and recovery codes

def begin_totp(s: Session, ctx: ProxyContext, user: User) -> str:
    """A new (unconfirmed) TOTP seed for ``user``; returns the otpauth:// URI for the QR code."""
    secret = pyotp.random_base32()
    if user.totp is not None:
        if user.totp.confirmed:
            raise IdentityError("an authenticator is already set up; remove it first", "totp")
        s.delete(user.totp)
        s.flush()
    user.totp = TotpFactor(user_id=user.id, secret_encrypted=ctx.box.seal(secret), confirmed=False, last_step=0,
                           created_at=utcnow())
    s.commit()
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=user.username, issuer_name=ctx.issuer)


def totp_secret(ctx: ProxyContext, user: User) -> str:
    return ctx.box.open(user.totp.secret_encrypted)


def _accept_code(ctx: ProxyContext, factor: TotpFactor, code: str, now: float) -> int | None:
    """The time step ``code`` belongs to, if valid and newer than the last accepted one."""
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(ctx.box.open(factor.secret_encrypted), digits=TOTP_DIGITS, interval=TOTP_PERIOD)
    step_now = int(now // TOTP_PERIOD)
    for step in range(step_now - TOTP_SKEW_STEPS, step_now + TOTP_SKEW_STEPS + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step if step > factor.last_step else None  # replay of a used (or older) code: refused
    return None


def confirm_totp(s: Session, ctx: ProxyContext, user: User, code: str, *, ip: str, now: float | None = None) -> list[str]:
    """Confirm enrolment with a first code; returns the recovery codes (shown once), [] when the code is wrong."""
    factor = user.totp
    if factor is None or factor.confirmed:
        return []
    step = _accept_code(ctx, factor, code, time.time() if now is None else now)
    if step is None:
        ctx.audit(s, user=user.username, ip=ip, action="mfa.totp.enrol", result="failure")
        return []
    factor.confirmed, factor.last_step = True, step
    s.commit()
    ctx.audit(s, user=user.username, ip=ip, action="mfa.totp.enrol")
    return new_recovery_codes(s, ctx, user, ip=ip, audit_it=False)


def check_totp(s: Session, ctx: ProxyContext, user: User, code: str, *, ip: str, now: float | None = None) -> bool:
    factor = user.totp
    if factor is None or not factor.confirmed:
        return False
    step = _accept_code(ctx, factor, code, time.time() if now is None else now)
    if step is None:
        return False
    factor.last_step = step
    s.commit()
    return True


def remove_totp(s: Session, ctx: ProxyContext, user: User, *, actor: str, ip: str) -> None:
    if user.totp is not None:
        s.delete(user.totp)
        s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        s.commit()
        s.refresh(user)
        ctx.audit(s, user=actor, ip=ip, action="mfa.totp.remove", obj=user.username)


def new_recovery_codes(s: Session, ctx: ProxyContext, user: User, *, ip: str, audit_it: bool = True) -> list[str]:
    s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = ["-".join(secrets.token_hex(3) for _ in range(3)) for _ in range(RECOVERY_CODES)]
    for c in codes:
        s.add(RecoveryCode(user_id=user.id, code_sha256=sha256_hex(c)))
    s.commit()
    if audit_it:
        ctx.audit(s, user=user.username, ip=ip, action="mfa.recovery.regenerate")
    return codes


def use_recovery_code(s: Session, ctx: ProxyContext, user: User, code: str, *, ip: str) -> bool:
    digest = sha256_hex(code.strip().lower())
    row = s.execute(select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.code_sha256 == digest,
                                               RecoveryCode.used_at.is_(None))).scalar_one_or_none()
    if row is None:
        return False
    row.used_at = utcnow()
    s.commit()
    left = s.execute(select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user.id,
                                                               RecoveryCode.used_at.is_(None))).scalar_one()
    ctx.audit(s, user=user.username, ip=ip, action="mfa.recovery.used", detail={"codes_left": left})
    return True


def has_second_factor(user: User, has_certificate: bool = False) -> bool:
    return bool(user.totp is not None and user.totp.confirmed) or has_certificate
