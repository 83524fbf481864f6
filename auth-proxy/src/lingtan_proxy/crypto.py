"""The proxy's secret key and what is derived from it.

One 256-bit key in ``<state_dir>/proxy/secret.key`` (mode 0600), created on first start. Sub-keys are
derived per purpose with HMAC-SHA256 (label as message), so the TOTP seeds' encryption key, the audit
chain's MAC key and Flask's signing key are independent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; a new random one is written (0600) when the file does not exist."""
    if path.exists():
        key = path.read_bytes()
        if len(key) != 32:
            raise ValueError(f"{path}: expected a 32-byte key, found {len(key)} bytes")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def subkey(master: bytes, label: str) -> bytes:
    return hmac.new(master, label.encode(), hashlib.sha256).digest()


class SecretBox:
    """Authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256) of small secrets such as TOTP seeds."""

    def __init__(self, master: bytes):
        self._fernet = Fernet(base64.urlsafe_b64encode(subkey(master, "lingtan.proxy.secretbox")))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError("a stored secret does not decrypt with this proxy's key (secret.key replaced?)") from None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
