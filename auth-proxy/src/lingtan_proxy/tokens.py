"""API tokens for government departments and third parties.

A token is ``lt_`` + 256 random bits, shown once at creation; the table keeps its SHA-256 and a short
prefix to tell tokens apart. Each token is scoped to enterprises (or the whole park) within its owner's
own scope, and to data kinds; it expires (at most ``tokens.max_days``), can be revoked, and is limited
to ``rate_per_minute`` requests. Every use is audited (``token.use``), and the rate limit counts those
audit rows, so it holds across all proxy worker processes.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lingtan_proxy.audit import utcnow
from lingtan_proxy.crypto import new_token, sha256_hex
from lingtan_proxy.identity import IdentityError, ProxyContext
from lingtan_proxy.models import ApiToken, AuditRecord, User
from lingtan_proxy.rbac import PARK, enterprise_scope

KINDS = ("energy", "carbon", "intensity", "realtime", "flows", "analysis")
PREFIX = "lt_"


def create_token(s: Session, ctx: ProxyContext, owner: User, *, name: str, enterprises: list[str], kinds: list[str],
                 days: int, rate_per_minute: int | None, all_enterprises: set[str], ip: str) -> tuple[ApiToken, str]:
    """A new token (row, clear text). Its scope can never exceed the owner's own."""
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise IdentityError("token name: 1-128 characters", "name", name)
    bad_kinds = sorted(set(kinds) - set(KINDS))
    if not kinds or bad_kinds:
        raise IdentityError(f"kinds {bad_kinds or kinds!r}: choose from {', '.join(KINDS)}", "kinds",
                            ",".join(bad_kinds))
    if not 1 <= days <= ctx.policy.tokens.max_days:
        raise IdentityError(f"days {days}: 1 to {ctx.policy.tokens.max_days}", "days", str(days))
    allowed = enterprise_scope(owner, all_enterprises)
    wanted = set(enterprises)
    if not wanted or not wanted <= allowed:
        raise IdentityError(f"enterprises {sorted(wanted - allowed) or 'none'}: not within your data scope "
                            f"({', '.join(sorted(allowed)) or 'empty'})", "enterprises", ",".join(sorted(wanted)))
    rate = rate_per_minute or ctx.policy.tokens.default_rate_per_minute
    if not 1 <= rate <= 100_000:
        raise IdentityError(f"rate_per_minute {rate}: 1 to 100000", "rate_per_minute", str(rate))
    clear = PREFIX + new_token(32)
    now = utcnow()
    row = ApiToken(name=name, prefix=clear[:10], token_sha256=sha256_hex(clear), owner_id=owner.id,
                   enterprises=sorted(wanted), kinds=sorted(set(kinds)), rate_per_minute=rate, created_at=now,
                   expires_at=now + timedelta(days=days))
    s.add(row)
    s.commit()
    ctx.audit(s, user=owner.username, ip=ip, action="token.create", obj=f"token:{row.id}",
              detail={"name": name, "enterprises": row.enterprises, "kinds": row.kinds, "days": days,
                      "rate_per_minute": rate})
    return row, clear


def resolve_token(s: Session, clear: str) -> ApiToken | None:
    """The live token for ``clear`` (not revoked, not expired, owner enabled), else None."""
    if not clear.startswith(PREFIX) or len(clear) > 128:
        return None
    row = s.execute(select(ApiToken).where(ApiToken.token_sha256 == sha256_hex(clear))).scalar_one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow() or row.owner.disabled:
        return None
    return row


def token_entities(token: ApiToken, all_enterprises: set[str]) -> set[str]:
    """What a token may read: its own list, cut down to what its owner may see today."""
    owner_scope = enterprise_scope(token.owner, all_enterprises)
    own = set(all_enterprises) | {PARK} if PARK in token.enterprises else set(token.enterprises)
    return own & owner_scope


def uses_last_minute(s: Session, token: ApiToken) -> int:
    since = utcnow() - timedelta(seconds=60)
    return s.execute(select(func.count(AuditRecord.id)).where(AuditRecord.action == "token.use",
                                                              AuditRecord.object == f"token:{token.id}",
                                                              AuditRecord.result == "success",
                                                              AuditRecord.time >= since)).scalar_one()


def revoke_token(s: Session, ctx: ProxyContext, token: ApiToken, *, actor: str, ip: str) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        s.commit()
        ctx.audit(s, user=actor, ip=ip, action="token.revoke", obj=f"token:{token.id}", detail={"name": token.name})
