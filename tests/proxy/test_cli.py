"""`lingtan users`, `lingtan certs` and `lingtan audit` as an administrator runs them on the host."""

from __future__ import annotations

import os
import subprocess
import sys

from cryptography.hazmat.primitives.serialization import pkcs12

from lingtan.db import make_engine, session_factory
from lingtan_proxy.models import Certificate


def lingtan(state, *args, check=True):
    env = {**os.environ, "LINGTAN_STATE_DIR": str(state)}
    res = subprocess.run([sys.executable, "-m", "lingtan.cli", *args], env=env, capture_output=True, text=True,
                         timeout=120)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_admin_certificates_and_audit_from_the_command_line(tmp_path):
    state = tmp_path / "var"
    out = lingtan(state, "users", "create-admin").stdout
    name, password = out.strip().split("\t")
    assert name == "admin" and len(password) >= 16
    assert lingtan(state, "users", "create-admin", check=False).returncode == 1  # never twice
    lingtan(state, "certs", "init")
    assert (state / "pki" / "ca.crt").exists() and (state / "pki" / "crl.pem").exists()
    issued = lingtan(state, "certs", "issue", "admin", "--days", "30", "--out", str(tmp_path / "c")).stdout
    serial = issued.split()[1]
    p12_password = issued.strip().rsplit(" ", 1)[1]
    p12 = next((tmp_path / "c").glob("admin-*.p12"))
    key, cert, _chain = pkcs12.load_key_and_certificates(p12.read_bytes(), p12_password.encode())
    assert cert.subject.rfc4514_string().startswith("CN=admin") or "CN=admin" in cert.subject.rfc4514_string()
    assert oct(p12.stat().st_mode & 0o777) == "0o600"
    assert lingtan(state, "certs", "revoke", serial, "--reason", "keyCompromise").returncode == 0
    db = session_factory(make_engine(f"sqlite:///{state / 'lingtan.db'}"))
    with db() as s:
        row = s.get(Certificate, serial)
        assert row is not None and row.revoked_at is not None
    assert lingtan(state, "certs", "revoke", "00ff", check=False).returncode == 1
    new = lingtan(state, "users", "reset-password", "admin").stdout.strip().split("\t")[1]
    assert new != password
    lingtan(state, "audit", "export", "--format", "csv", "-o", str(tmp_path / "a.csv"))
    text = (tmp_path / "a.csv").read_text(encoding="utf-8-sig")
    for action in ("user.create", "mfa.cert.issue", "mfa.cert.revoke", "password.reset"):
        assert action in text
    refused = lingtan(state, "audit", "archive", "--before", "2026-11-01", check=False)
    assert refused.returncode == 1 and "retention" in refused.stderr
    ok = lingtan(state, "audit", "verify")
    assert "audit_log: OK" in ok.stdout
