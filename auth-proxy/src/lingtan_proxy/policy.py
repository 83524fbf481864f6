"""The security policy: passwords, lockout, sessions, API tokens, audit retention.

Typed and validated at start-up from ``<state_dir>/security.yaml`` (optional; every key has a default).
The defaults follow GB/T 22239-2019 level 2 (8.1.4.1 identity authentication) as assessors apply it:
8+ characters from 3 of 4 classes, change every 90 days, lock after 5 failures, 15-minute idle timeout
(docs/security.md, the GB/T 22239-2019 mapping). A value weaker than that floor is refused, not clamped.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PasswordPolicy(_Strict):
    min_length: int = Field(8, ge=8, le=128)
    min_classes: int = Field(3, ge=3, le=4)  # of: lower case, upper case, digits, other
    max_age_days: int = Field(90, ge=0, le=3650)  # 0 = never expires
    history: int = Field(5, ge=0, le=50)  # this many previous passwords may not be reused


class LockoutPolicy(_Strict):
    max_failures: int = Field(5, ge=1, le=100)  # per user name (existing or not) within window_s
    window_s: int = Field(300, ge=10)
    ban_s: int = Field(900, ge=10)  # cool-down after the last failure once the limit is reached
    ip_max_failures: int = Field(20, ge=1, le=10_000)  # per source address, stops user-name spraying


class SessionPolicy(_Strict):
    idle_minutes: int = Field(15, ge=1, le=240)
    absolute_hours: int = Field(8, ge=1, le=72)
    mfa_window_minutes: int = Field(5, ge=1, le=30)  # time allowed between password and second factor


class TokenPolicy(_Strict):
    max_days: int = Field(365, ge=1, le=3650)
    default_rate_per_minute: int = Field(60, ge=1, le=100_000)


class AuditPolicy(_Strict):
    # Cybersecurity Law art. 21(3): network logs kept at least six months (docs/security.md, audit log)
    retention_days: int = Field(180, ge=180)


class SecurityPolicy(_Strict):
    password: PasswordPolicy = PasswordPolicy()
    lockout: LockoutPolicy = LockoutPolicy()
    session: SessionPolicy = SessionPolicy()
    tokens: TokenPolicy = TokenPolicy()
    audit: AuditPolicy = AuditPolicy()


class PolicyError(ValueError):
    """security.yaml is unreadable or a value is out of range; the message names file, field and value."""


def load_policy(path: Path) -> SecurityPolicy:
    """The policy in ``path``, or the defaults when the file does not exist."""
    if not path.exists():
        return SecurityPolicy()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    try:
        return SecurityPolicy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}"
                             for e in exc.errors())
        raise PolicyError(f"{path}: {problems}") from None
