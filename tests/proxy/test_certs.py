"""The park CA: creation, user certificates, revocation through the CRL, the database mapping, real TLS."""

from __future__ import annotations

import hashlib
import queue
import socket
import ssl
import stat
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session

from lingtan.db import make_engine, session_factory
from lingtan_proxy.certs import (
    CertificateRejected,
    ParkCA,
    issue_for_user,
    revoke_certificate,
    server_ssl_context,
    user_for_certificate,
)
from lingtan_proxy.models import Certificate, User

FILES = ("ca.crt", "ca.key", "server.crt", "server.key", "crl.pem")


@pytest.fixture
def ca(tmp_path: Path) -> ParkCA:
    return ParkCA.ensure(tmp_path / "pki", park_name="Test park")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    with session_factory(engine)() as s:
        yield s
    engine.dispose()


def _user(session: Session, username: str, **fields) -> User:
    now = datetime.now(UTC).replace(tzinfo=None)
    user = User(username=username, password_hash="x", password_changed_at=now, created_at=now, **fields)
    session.add(user)
    session.commit()
    return user


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {name: ((directory / name).read_bytes(), (directory / name).stat().st_mtime_ns) for name in FILES}


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ensure_creates_the_ca_once(tmp_path: Path, ca: ParkCA) -> None:
    directory = tmp_path / "pki"
    assert all((directory / name).exists() for name in FILES)
    for key_file in (ca.ca_key_path, ca.server_key_path):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cert = _load(ca.ca_cert_path)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test park Lingtan CA"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Lingtan"
    assert cert.issuer == cert.subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert 3650 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 3660
    assert list(x509.load_pem_x509_crl(ca.crl_path.read_bytes())) == []
    assert ca.revoked_serials() == set()

    before = _snapshot(directory)
    again = ParkCA.ensure(directory, park_name="Another name")
    assert _snapshot(directory) == before
    assert again.ca_cert == ca.ca_cert


def test_server_certificate_names(tmp_path: Path, ca: ParkCA) -> None:
    cert = _load(ca.server_cert_path)
    cert.verify_directly_issued_by(ca.ca_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert 824 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 826

    directory = tmp_path / "pki"
    before = _snapshot(directory)
    ParkCA.ensure(directory, server_names=["proxy.park.example", "10.1.2.3", "::1"])
    after = _snapshot(directory)
    assert after["ca.crt"] == before["ca.crt"] and after["ca.key"] == before["ca.key"]
    assert after["crl.pem"] == before["crl.pem"]
    assert after["server.crt"] != before["server.crt"] and after["server.key"] != before["server.key"]
    sans = _load(ca.server_cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["proxy.park.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ip_address("10.1.2.3"), ip_address("::1")]

    ParkCA.ensure(directory, server_names=["10.1.2.3"])  # already covered: nothing re-issued
    assert _snapshot(directory) == after


def test_user_certificate_verifies(ca: ParkCA) -> None:
    issued = ca.issue_user_certificate("alice", days=30, email="alice@park.example")
    der = _der(issued.cert_pem)
    cert = ca.verify_client_certificate(der)
    assert issued.subject == "O=Lingtan,CN=alice" == cert.subject.rfc4514_string()
    assert issued.fingerprint_sha256 == hashlib.sha256(der).hexdigest()
    assert issued.serial_hex == f"{cert.serial_number:x}"
    assert issued.not_before.tzinfo is None and issued.not_after.tzinfo is None
    assert issued.not_after - issued.not_before == timedelta(days=30, minutes=5)
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.RFC822Name) == ["alice@park.example"]
    key = serialization.load_pem_private_key(issued.key_pem, password=None)
    assert key.public_key() == cert.public_key()


def test_pkcs12_opens_with_its_password(ca: ParkCA) -> None:
    issued = ca.issue_user_certificate("bob")
    key, cert, extra = pkcs12.load_key_and_certificates(issued.p12, issued.p12_password.encode())
    assert cert is not None and cert.public_bytes(serialization.Encoding.PEM) == issued.cert_pem
    assert key is not None and key.public_key() == cert.public_key()
    assert extra == [ca.ca_cert]
    assert len(issued.p12_password) >= 16
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(issued.p12, b"wrong password")


def test_certificate_from_another_ca_is_rejected(tmp_path: Path, ca: ParkCA) -> None:
    other = ParkCA.ensure(tmp_path / "other", park_name="Test park")  # same issuer name, other key
    issued = other.issue_user_certificate("mallory")
    with pytest.raises(CertificateRejected, match="not issued by this park CA"):
        ca.verify_client_certificate(_der(issued.cert_pem))
    with pytest.raises(CertificateRejected, match="not a DER"):
        ca.verify_client_certificate(b"garbage")


def test_expired_and_not_yet_valid_certificates_are_rejected(ca: ParkCA) -> None:
    past = datetime.now(UTC) - timedelta(days=10)
    expired = ca.issue_user_certificate("carol", days=2, now=past)
    with pytest.raises(CertificateRejected, match="expired"):
        ca.verify_client_certificate(_der(expired.cert_pem))
    assert ca.verify_client_certificate(_der(expired.cert_pem), now=past + timedelta(days=1))
    fresh = ca.issue_user_certificate("carol")
    with pytest.raises(CertificateRejected, match="not valid before"):
        ca.verify_client_certificate(_der(fresh.cert_pem), now=past)
    with pytest.raises(ValueError):
        ca.issue_user_certificate("carol", days=0)


def test_server_certificate_is_not_a_client_certificate(ca: ParkCA) -> None:
    der = _load(ca.server_cert_path).public_bytes(serialization.Encoding.DER)
    with pytest.raises(CertificateRejected, match="clientAuth"):
        ca.verify_client_certificate(der)


def test_revocation_reaches_another_instance_through_the_crl(tmp_path: Path, ca: ParkCA) -> None:
    issued = ca.issue_user_certificate("dave")
    kept = ca.issue_user_certificate("erin")
    reader = ParkCA(tmp_path / "pki")  # e.g. the running proxy, while the CLI revokes
    assert reader.verify_client_certificate(_der(issued.cert_pem))

    ca.revoke(issued.serial_hex.upper(), "keyCompromise")
    with pytest.raises(CertificateRejected, match="revoked"):
        reader.verify_client_certificate(_der(issued.cert_pem))
    assert reader.verify_client_certificate(_der(kept.cert_pem))
    assert reader.revoked_serials() == {issued.serial_hex}
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(issued.serial_hex, 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert crl.next_update_utc is not None
    assert timedelta(days=6) < crl.next_update_utc - datetime.now(UTC) <= timedelta(days=7)
    assert issued.serial_hex in (tmp_path / "pki" / "revoked.json").read_text()

    before = _snapshot(tmp_path / "pki")
    ParkCA.ensure(tmp_path / "pki")  # a restart keeps the revocation and the files
    assert _snapshot(tmp_path / "pki") == before
    ca.refresh_crl()
    assert reader.revoked_serials() == {issued.serial_hex}


def test_a_crl_not_signed_by_the_ca_fails_closed(tmp_path: Path, ca: ParkCA) -> None:
    issued = ca.issue_user_certificate("frank")
    other = ParkCA.ensure(tmp_path / "other", park_name="Test park")
    ca.crl_path.write_bytes(other.crl_path.read_bytes())
    with pytest.raises(CertificateRejected, match="revocation list"):
        ca.verify_client_certificate(_der(issued.cert_pem))
    ca.crl_path.unlink()
    with pytest.raises(CertificateRejected, match="revocation list"):
        ca.verify_client_certificate(_der(issued.cert_pem))


def test_user_for_certificate(session: Session, ca: ParkCA) -> None:
    alice, bob = _user(session, "alice", email="alice@park.example"), _user(session, "bob")
    for_alice = issue_for_user(session, ca, alice, days=90)
    for_bob = issue_for_user(session, ca, bob)
    row = session.get(Certificate, for_alice.serial_hex)
    assert row is not None and row.user_id == alice.id and row.fingerprint_sha256 == for_alice.fingerprint_sha256
    assert row.not_after == for_alice.not_after and row.subject == "O=Lingtan,CN=alice"

    assert user_for_certificate(session, ca, _der(for_alice.cert_pem)).id == alice.id
    assert user_for_certificate(session, ca, _der(for_bob.cert_pem)).id == bob.id

    unrecorded = ca.issue_user_certificate("alice")  # signed by the CA but never recorded
    with pytest.raises(CertificateRejected, match="not on record"):
        user_for_certificate(session, ca, _der(unrecorded.cert_pem))

    bob.disabled = True
    session.commit()
    with pytest.raises(CertificateRejected, match="disabled"):
        user_for_certificate(session, ca, _der(for_bob.cert_pem))

    revoked = revoke_certificate(session, ca, for_alice.serial_hex, "left the company")
    assert revoked.revoked_at is not None and revoked.revoke_reason == "left the company"
    assert for_alice.serial_hex in ca.revoked_serials()
    with pytest.raises(CertificateRejected, match="revoked"):
        user_for_certificate(session, ca, _der(for_alice.cert_pem))
    with pytest.raises(LookupError):
        revoke_certificate(session, ca, "abcdef", "typo")


# -- a real TLS handshake ---------------------------------------------------------------------------


class _TlsServer:
    """Accepts connections one by one on 127.0.0.1 and records what each handshake gave."""

    def __init__(self, ctx: ssl.SSLContext):
        self.ctx = ctx
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.results: queue.Queue[tuple[str, object]] = queue.Queue()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.stopping.is_set():
                conn.close()
                return
            conn.settimeout(10)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.results.put(("ok", tls.getpeercert(binary_form=True)))
                    tls.sendall(b"hello")
            except (ssl.SSLError, OSError) as exc:
                self.results.put(("error", exc))

    def result(self) -> tuple[str, object]:
        return self.results.get(timeout=10)

    def close(self) -> None:
        self.stopping.set()
        socket.create_connection(("127.0.0.1", self.port), timeout=10).close()  # wakes accept()
        self.thread.join(timeout=10)
        self.listener.close()


def _client_context(ca: ParkCA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.ca_cert_path))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def _talk(port: int, ctx: ssl.SSLContext, hostname: str = "localhost") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=hostname) as tls:
        return tls.recv(16)


@pytest.fixture
def tls_server(ca: ParkCA) -> Iterator[_TlsServer]:
    server = _TlsServer(server_ssl_context(ca))
    yield server
    server.close()


def test_server_context_settings(ca: ParkCA) -> None:
    ctx = server_ssl_context(ca, cert_path=ca.server_cert_path, key_path=ca.server_key_path)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ctx.get_ca_certs()[0]["subject"] == ((("commonName", "Test park Lingtan CA"),), (("organizationName",
                                                                                              "Lingtan"),))


def test_tls_handshake_with_and_without_client_certificate(tmp_path: Path, ca: ParkCA,
                                                             session: Session, tls_server: _TlsServer) -> None:
    alice = _user(session, "alice")
    issued = issue_for_user(session, ca, alice)
    (tmp_path / "alice.crt").write_bytes(issued.cert_pem)
    (tmp_path / "alice.key").write_bytes(issued.key_pem)
    with_cert = _client_context(ca)
    with_cert.load_cert_chain(tmp_path / "alice.crt", tmp_path / "alice.key")

    assert _talk(tls_server.port, with_cert) == b"hello"
    status, peer = tls_server.result()
    assert status == "ok" and isinstance(peer, bytes)
    assert peer == _der(issued.cert_pem)
    assert user_for_certificate(session, ca, peer).username == "alice"

    assert _talk(tls_server.port, _client_context(ca), hostname="127.0.0.1") == b"hello"  # CERT_OPTIONAL
    assert tls_server.result() == ("ok", None)


def test_tls_refuses_a_foreign_client_certificate_and_old_protocols(tmp_path: Path, ca: ParkCA,
                                                                     tls_server: _TlsServer) -> None:
    other = ParkCA.ensure(tmp_path / "other")
    foreign = other.issue_user_certificate("mallory")
    (tmp_path / "m.crt").write_bytes(foreign.cert_pem)
    (tmp_path / "m.key").write_bytes(foreign.key_pem)
    ctx = _client_context(ca)
    ctx.load_cert_chain(tmp_path / "m.crt", tmp_path / "m.key")
    try:  # with TLS 1.3 the client may finish its side first and only then read the server's alert
        data = _talk(tls_server.port, ctx)
    except (ssl.SSLError, OSError):
        data = b""
    assert data == b""
    status, error = tls_server.result()
    assert status == "error" and isinstance(error, ssl.SSLError)

    old = _client_context(ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL at least offer TLS 1.1 if it can
    with pytest.raises(ssl.SSLError):
        _talk(tls_server.port, old)
    assert tls_server.result()[0] == "error"
