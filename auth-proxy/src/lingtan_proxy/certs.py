"""The park certificate authority: client certificates for users, the proxy's server certificate, a CRL.

Everything lives in one directory (default ``<state_dir>/pki/``): ``ca.crt``/``ca.key`` (EC P-256,
self-signed, 10 years), ``server.crt``/``server.key`` (825 days), ``crl.pem`` (signed by the CA, next
update in 7 days) and ``revoked.json``, the CA's own record of what it revoked. Key files are 0600 and
every file is replaced atomically, so another process reading the directory never sees half a file.
Revocation is read back from ``crl.pem`` (re-read when the file changes), so a revocation made by the
CLI is seen by a running proxy without a restart. All datetimes handed out are naive UTC.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session

from lingtan_proxy.models import Certificate, User

CA_DAYS = 3652  # ten years
SERVER_DAYS = 825  # the most browsers accept for a server certificate
CRL_DAYS = 7
CRL_REFRESH_BEFORE = timedelta(days=1)  # ensure() re-signs a CRL that expires sooner than this
CLOCK_SKEW = timedelta(minutes=5)  # certificates start this much before "now"
_P12_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"  # nothing to misread
_REASONS = {flag.value: flag for flag in x509.ReasonFlags}

IssuerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertificateRejected(ValueError):  # noqa: N818 - the name says what happened to the certificate
    """A client certificate that does not let anyone in; the message says why."""

    def __init__(self, reason: str):
        super().__init__(f"client certificate rejected: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class IssuedCertificate:
    """A freshly issued user certificate with its key, also as an encrypted PKCS#12 bundle."""

    serial_hex: str
    fingerprint_sha256: str
    not_before: datetime  # naive UTC
    not_after: datetime  # naive UTC
    cert_pem: bytes
    key_pem: bytes
    p12: bytes
    p12_password: str
    subject: str  # RFC 4514


def default_directory(state_dir: Path) -> Path:
    """Where the park CA lives under a state directory."""
    return state_dir / "pki"


def normalize_serial(serial_hex: str) -> str:
    """A serial number as this module writes it: lower-case hex, no leading zeros (colons accepted)."""
    try:
        return _hex(int(serial_hex.replace(":", "").strip(), 16))
    except ValueError:
        raise ValueError(f"not a hexadecimal serial number: {serial_hex!r}") from None


def _hex(serial: int) -> str:
    return f"{serial:x}"


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` atomically with ``data`` (the file never exists with looser permissions)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock between processes changing the CA directory."""
    with open(directory / ".lock", "a") as f:  # closing the file releases the lock
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: IssuerKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name.lower())


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> list:
    """The entries of a list-like extension (SAN, EKU), empty when the certificate has none."""
    try:
        return list(cert.extensions.get_extension_for_class(kind).value)  # type: ignore[call-overload]
    except x509.ExtensionNotFound:
        return []


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class ParkCA:
    """The park's certificate authority in ``directory`` (made by :meth:`ensure`)."""

    def __init__(self, directory: Path):
        self.directory = directory = Path(directory)
        self.ca_cert_path, self.ca_key_path = directory / "ca.crt", directory / "ca.key"
        self.server_cert_path, self.server_key_path = directory / "server.crt", directory / "server.key"
        self.crl_path, self.revoked_path = directory / "crl.pem", directory / "revoked.json"
        if not self.ca_cert_path.exists() or not self.ca_key_path.exists():
            raise FileNotFoundError(f"{self.directory}: no park CA here (ParkCA.ensure creates one)")
        self.ca_cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"{self.ca_key_path}: the CA key must be EC or RSA, found {type(key).__name__}")
        self._ca_key: IssuerKey = key
        self._crl_cache: tuple[tuple[int, int, int], frozenset[str]] | None = None

    @classmethod
    def ensure(cls, directory: Path, park_name: str = "Lingtan park",
               server_names: list[str] | None = None) -> ParkCA:
        """The CA in ``directory``, created on first use; a server certificate covering ``server_names``.

        Existing files are left alone, except that the server certificate is re-issued when it is
        missing, does not name every one of ``server_names`` (default localhost and 127.0.0.1), was not
        issued by this CA or expires within 30 days, and the CRL is re-signed when missing or about to
        expire.
        """
        names = list(server_names) if server_names is not None else ["localhost", "127.0.0.1"]
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(directory):
            if not (directory / "ca.crt").exists() or not (directory / "ca.key").exists():
                _create_ca(directory, park_name)
            ca = cls(directory)
            if ca._server_needs_issue(names):
                ca._issue_server(names)
            if ca._crl_needs_refresh():
                ca._write_crl()
        return ca

    def _leaf(self, common_name: str, key: ec.EllipticCurvePrivateKey, not_before: datetime,
              not_after: datetime, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]) -> x509.Certificate:
        """An end-entity certificate for ``key`` signed by the CA (CA:false, digitalSignature, one EKU)."""
        ski = self.ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lingtan")]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self._ca_key, hashes.SHA256())

    def _validity(self, now: datetime, days: int) -> tuple[datetime, datetime]:
        """From a little before ``now`` for ``days``, but never past the CA's own expiry."""
        return now - CLOCK_SKEW, min(now + timedelta(days=days), self.ca_cert.not_valid_after_utc)

    def _server_needs_issue(self, names: list[str]) -> bool:
        if not self.server_cert_path.exists() or not self.server_key_path.exists():
            return True
        cert = x509.load_pem_x509_certificate(self.server_cert_path.read_bytes())
        return (not {_general_name(n) for n in names} <= set(_extension(cert, x509.SubjectAlternativeName))
                or not _issued_by(cert, self.ca_cert)
                or cert.not_valid_after_utc < datetime.now(UTC) + timedelta(days=30))

    def _issue_server(self, names: list[str]) -> None:
        if not names:
            raise ValueError("the server certificate needs at least one DNS name or IP address")
        key = _new_key()
        not_before, not_after = self._validity(datetime.now(UTC), SERVER_DAYS)
        cert = self._leaf(names[0][:64], key, not_before, not_after, ExtendedKeyUsageOID.SERVER_AUTH,
                          [_general_name(n) for n in names])
        _write(self.server_key_path, _key_pem(key), 0o600)
        _write(self.server_cert_path, cert.public_bytes(serialization.Encoding.PEM))

    def issue_user_certificate(self, username: str, *, days: int = 365, email: str = "",
                               now: datetime | None = None) -> IssuedCertificate:
        """A new key and client certificate (CN=username, O=Lingtan, clientAuth) valid ``days`` from ``now``."""
        if not username or len(username) > 64:
            raise ValueError(f"a certificate's user name must be 1 to 64 characters: {username!r}")
        if days < 1:
            raise ValueError(f"a certificate is valid for at least one day, not {days}")
        key = _new_key()
        not_before, not_after = self._validity(_utc(now), days)
        cert = self._leaf(username, key, not_before, not_after, ExtendedKeyUsageOID.CLIENT_AUTH,
                          [x509.RFC822Name(email)] if email else [])
        password = "".join(secrets.choice(_P12_ALPHABET) for _ in range(20))
        encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(100_000)
                      .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
                      .build(password.encode()))
        p12 = pkcs12.serialize_key_and_certificates(username.encode(), key, cert, [self.ca_cert], encryption)
        return IssuedCertificate(
            serial_hex=_hex(cert.serial_number), fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
            not_before=_naive(cert.not_valid_before_utc), not_after=_naive(cert.not_valid_after_utc),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=_key_pem(key),
            p12=p12, p12_password=password, subject=cert.subject.rfc4514_string())

    def _read_record(self) -> dict:
        if not self.revoked_path.exists():
            return {"crl_number": 0, "revoked": {}}
        return json.loads(self.revoked_path.read_text())

    def revoke(self, serial_hex: str, reason: str = "unspecified") -> None:
        """Add a serial to revoked.json and re-sign crl.pem; revoking twice keeps the first date and reason."""
        serial = normalize_serial(serial_hex)
        with _locked(self.directory):
            record = self._read_record()
            if serial not in record["revoked"]:
                record["revoked"][serial] = {"revoked_at": datetime.now(UTC).isoformat(), "reason": reason}
            self._write_crl(record)

    def refresh_crl(self) -> None:
        """Re-sign crl.pem now (a new next-update date); a daily job keeps outside relying parties happy."""
        with _locked(self.directory):
            self._write_crl()

    def _crl_needs_refresh(self) -> bool:
        if not self.crl_path.exists():
            return True
        next_update = x509.load_pem_x509_crl(self.crl_path.read_bytes()).next_update_utc
        return next_update is None or next_update < datetime.now(UTC) + CRL_REFRESH_BEFORE

    def _write_crl(self, record: dict | None = None) -> None:
        """Sign a CRL of everything in ``record`` (default revoked.json) and save both; caller holds the lock."""
        record = record if record is not None else self._read_record()
        record["crl_number"] = int(record.get("crl_number", 0)) + 1
        now = datetime.now(UTC)
        ski = self.ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca_cert.subject)
            .last_update(now - CLOCK_SKEW)
            .next_update(now + timedelta(days=CRL_DAYS))
            .add_extension(x509.CRLNumber(record["crl_number"]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        )
        for serial, entry in sorted(record["revoked"].items()):
            revoked = (x509.RevokedCertificateBuilder()
                       .serial_number(int(serial, 16))
                       .revocation_date(datetime.fromisoformat(entry["revoked_at"])))
            flag = _REASONS.get(entry.get("reason", ""))
            if flag is not None and flag is not x509.ReasonFlags.unspecified:  # RFC 5280: omit unspecified
                revoked = revoked.add_extension(x509.CRLReason(flag), critical=False)
            builder = builder.add_revoked_certificate(revoked.build())
        crl = builder.sign(self._ca_key, hashes.SHA256())
        _write(self.revoked_path, json.dumps(record, indent=1, sort_keys=True).encode())
        _write(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))

    def revoked_serials(self) -> set[str]:
        """The serials (normalized hex) in crl.pem, re-read whenever the file changes.

        Raises ValueError when the CRL is missing, unreadable or not signed by this CA.
        """
        try:
            st = self.crl_path.stat()
        except FileNotFoundError:
            raise ValueError(f"{self.crl_path}: no CRL") from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._crl_cache
        if cached is None or cached[0] != stamp:
            crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
            if crl.issuer != self.ca_cert.subject or not crl.is_signature_valid(self.ca_cert.public_key()):
                raise ValueError(f"{self.crl_path}: CRL not signed by this CA")
            cached = (stamp, frozenset(_hex(r.serial_number) for r in crl))
            self._crl_cache = cached
        return set(cached[1])

    def verify_client_certificate(self, der: bytes, *, now: datetime | None = None) -> x509.Certificate:
        """The certificate in ``der`` if this CA issued it for client auth and it is valid and not revoked."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise CertificateRejected("not a DER-encoded X.509 certificate") from None
        if not _issued_by(cert, self.ca_cert):
            raise CertificateRejected(f"not issued by this park CA (issuer {cert.issuer.rfc4514_string()})")
        moment = _utc(now)
        if moment < cert.not_valid_before_utc:
            raise CertificateRejected(f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")
        if moment > cert.not_valid_after_utc:
            raise CertificateRejected(f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
        try:
            revoked = self.revoked_serials()
        except ValueError as exc:  # fail closed: without a trustworthy CRL nobody gets in
            raise CertificateRejected(f"revocation list unusable ({exc})") from None
        if _hex(cert.serial_number) in revoked:
            raise CertificateRejected(f"revoked (serial {_hex(cert.serial_number)})")
        if ExtendedKeyUsageOID.CLIENT_AUTH not in _extension(cert, x509.ExtendedKeyUsage):
            raise CertificateRejected("not a client certificate (no clientAuth extended key usage)")
        return cert


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _create_ca(directory: Path, park_name: str) -> None:
    """Write a new self-signed CA (ca.crt, ca.key 0600) into ``directory``."""
    common_name = f"{park_name} Lingtan CA"
    if not park_name or len(common_name) > 64:
        raise ValueError(f"park name must be 1 to {64 - len(' Lingtan CA')} characters for the CA's name")
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lingtan")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / "ca.key", _key_pem(key), 0o600)
    _write(directory / "ca.crt", cert.public_bytes(serialization.Encoding.PEM))


def issue_for_user(session: Session, ca: ParkCA, user: User, days: int = 365) -> IssuedCertificate:
    """Issue a client certificate for ``user`` and record it (commits)."""
    issued = ca.issue_user_certificate(user.username, days=days, email=user.email or "")
    session.add(Certificate(serial=issued.serial_hex, user_id=user.id, subject=issued.subject,
                            fingerprint_sha256=issued.fingerprint_sha256, not_before=issued.not_before,
                            not_after=issued.not_after, revoked_at=None, revoke_reason=""))
    session.commit()
    return issued


def revoke_certificate(session: Session, ca: ParkCA, serial_hex: str, reason: str = "unspecified") -> Certificate:
    """Revoke a recorded certificate: into the CRL first (fail closed), then ``revoked_at`` (commits).

    Raises LookupError for a serial that was never recorded.
    """
    serial = normalize_serial(serial_hex)
    row = session.get(Certificate, serial)
    if row is None:
        raise LookupError(f"no certificate with serial {serial}")
    ca.revoke(serial, reason)
    if row.revoked_at is None:
        row.revoked_at = _naive(datetime.now(UTC))
        row.revoke_reason = reason[:128]
    session.commit()
    return row


def user_for_certificate(session: Session, ca: ParkCA, der: bytes, *, now: datetime | None = None) -> User:
    """The user a presented client certificate (DER) logs in, matched by SHA-256 fingerprint."""
    cert = ca.verify_client_certificate(der, now=now)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    row = session.query(Certificate).filter_by(fingerprint_sha256=fingerprint).one_or_none()
    if row is None or row.serial != _hex(cert.serial_number):
        raise CertificateRejected("certificate not on record")
    if row.revoked_at is not None:
        raise CertificateRejected(f"revoked (serial {row.serial})")
    user = session.get(User, row.user_id)
    if user is None:
        raise CertificateRejected("the certificate's user no longer exists")
    if user.disabled:
        raise CertificateRejected(f"user {user.username} is disabled")
    if user.expires_at is not None and user.expires_at <= _naive(_utc(now)):
        raise CertificateRejected(f"account of {user.username} expired")
    return user


def server_ssl_context(ca: ParkCA, cert_path: Path | None = None, key_path: Path | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context that asks for (but does not require) a client certificate from the park CA.

    The server presents ``cert_path``/``key_path`` when given (e.g. a public certificate), otherwise the
    park CA's server certificate. A presented client certificate must chain to the park CA or the
    handshake fails; revocation is checked per request with :func:`user_for_certificate`.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_verify_locations(cafile=str(ca.ca_cert_path))
    if cert_path is not None:
        ctx.load_cert_chain(str(cert_path), str(key_path) if key_path is not None else None)
    else:
        ctx.load_cert_chain(str(ca.server_cert_path), str(ca.server_key_path))
    return ctx
