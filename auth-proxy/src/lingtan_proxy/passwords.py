"""Password hashing (argon2id) and the password policy.

argon2-cffi's defaults are RFC 9106's second recommended option (argon2id, t=3, m=64 MiB, p=4).
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lingtan_proxy.policy import PasswordPolicy

HASHER = PasswordHasher()  # argon2id
# verified against for unknown user names, so a wrong name costs the same time as a wrong password
_DUMMY_HASH = HASHER.hash("lingtan-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an absent hash still costs one argon2 verification."""
    try:
        return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)


def character_classes(password: str) -> int:
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    count = sum(any(c in cls for c in password) for cls in classes)
    return count + any(not (c.isascii() and c.isalnum()) for c in password)


def policy_problems(password: str, policy: PasswordPolicy, *, username: str = "",
                    previous_hashes: list[str] = ()) -> list[str]:
    """Message keys (see :mod:`lingtan_proxy.i18n`) for every rule ``password`` breaks; empty when it is fine."""
    problems = []
    if len(password) < policy.min_length:
        problems.append("pw_too_short")
    if character_classes(password) < policy.min_classes:
        problems.append("pw_classes")
    if username and username.lower() in password.lower():
        problems.append("pw_contains_user")
    if any(verify_password(h, password) for h in previous_hashes[: policy.history]):
        problems.append("pw_reused")
    return problems


def password_expired(changed_at: datetime, policy: PasswordPolicy, now: datetime) -> bool:
    return policy.max_age_days > 0 and now - changed_at > timedelta(days=policy.max_age_days)
