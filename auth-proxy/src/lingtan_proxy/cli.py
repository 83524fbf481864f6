"""Command-line administration of the proxy: serve, first administrator, certificates, audit.

Registered into ``lingtan`` by :func:`register`. Commands that change identities are audited with the
operating-system user as the actor (``cli:<user>``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lingtan.settings import load_settings


def _settings(args):
    over = {}
    if getattr(args, "state_dir", None):
        over["state_dir"] = Path(args.state_dir).absolute()
    if getattr(args, "park", None):
        over["park_file"] = Path(args.park)
    return load_settings(**over)


def _context(settings):
    """(sessionmaker, ProxyContext) without building the Flask app."""
    from lingtan.db import make_engine, session_factory
    from lingtan_proxy import audit
    from lingtan_proxy.crypto import SecretBox, load_or_create_key, subkey
    from lingtan_proxy.identity import ProxyContext
    from lingtan_proxy.policy import load_policy
    from lingtan_proxy.rbac import ensure_builtin_roles

    state_dir = Path(settings.state_dir)
    master = load_or_create_key(state_dir / "proxy" / "secret.key")
    db = session_factory(make_engine(settings.sql_url))
    ctx = ProxyContext(policy=load_policy(state_dir / "security.yaml"), audit_key=subkey(master, "lingtan.audit.chain"),
                       box=SecretBox(master))
    with db() as s:
        audit.ensure_head(s, ctx.audit_key)
        ensure_builtin_roles(s)
    return db, ctx


def _park_ca(settings, **kw):
    from lingtan_proxy.certs import ParkCA, default_directory

    return ParkCA.ensure(default_directory(Path(settings.state_dir)), **kw)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def cmd_proxy_serve(args) -> int:
    from lingtan_proxy.server import ProxyServer

    ProxyServer(_settings(args)).run()
    return 0


def cmd_proxy_redirect(args) -> int:
    from lingtan_proxy.server import serve_redirect

    serve_redirect(_settings(args))
    return 0


def create_first_admin(settings, username: str = "admin") -> str | None:
    """The first administrator (system + security admin) with a one-time password; None if users exist."""
    from sqlalchemy import func, select

    from lingtan_proxy.identity import create_user
    from lingtan_proxy.models import User

    db, ctx = _context(settings)
    with db() as s:
        if s.execute(select(func.count(User.id))).scalar_one():
            return None
        _user, password = create_user(s, ctx, username=username, roles=["system_admin", "security_admin"],
                                      actor=_actor(), ip="local", display_name="Administrator", park_scope=True)
    return password


def cmd_users_create_admin(args) -> int:
    password = create_first_admin(_settings(args), args.username)
    if password is None:
        print("lingtan users create-admin: users exist already; no account was created", file=sys.stderr)
        return 1
    print(f"{args.username}\t{password}")
    return 0


def cmd_users_reset_password(args) -> int:
    from lingtan_proxy.identity import find_user, reset_password

    db, ctx = _context(_settings(args))
    with db() as s:
        user = find_user(s, args.username)
        if user is None:
            print(f"lingtan users reset-password: no user {args.username!r}", file=sys.stderr)
            return 1
        print(f"{user.username}\t{reset_password(s, ctx, user, actor=_actor(), ip='local')}")
    return 0


def cmd_certs_init(args) -> int:
    ca = _park_ca(_settings(args), server_names=args.name or None)
    print(f"park CA {ca.ca_cert_path}\nserver certificate {ca.server_cert_path}\nCRL {ca.crl_path}")
    return 0


def cmd_certs_issue(args) -> int:
    from lingtan_proxy.certs import issue_for_user
    from lingtan_proxy.identity import find_user

    settings = _settings(args)
    db, ctx = _context(settings)
    ca = _park_ca(settings)
    with db() as s:
        user = find_user(s, args.user)
        if user is None:
            print(f"lingtan certs issue: no user {args.user!r}", file=sys.stderr)
            return 1
        issued = issue_for_user(s, ca, user, days=args.days)
        ctx.audit(s, user=_actor(), ip="local", action="mfa.cert.issue", obj=user.username,
                  detail={"serial": issued.serial_hex, "not_after": issued.not_after.isoformat()})
    out = Path(args.out or ".")
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"{user.username}-{issued.serial_hex[:8]}"
    for suffix, data in ((".crt", issued.cert_pem), (".key", issued.key_pem), (".p12", issued.p12)):
        path = base.with_suffix(suffix)
        path.write_bytes(data)
        path.chmod(0o600)
    print(f"serial {issued.serial_hex}  valid until {issued.not_after:%Y-%m-%d}\n"
          f"files {base}.crt {base}.key {base}.p12\nPKCS#12 password (shown once): {issued.p12_password}")
    return 0


def cmd_certs_revoke(args) -> int:
    from lingtan_proxy.certs import revoke_certificate

    settings = _settings(args)
    db, ctx = _context(settings)
    ca = _park_ca(settings)
    with db() as s:
        try:
            row = revoke_certificate(s, ca, args.serial, args.reason)
        except LookupError:
            print(f"lingtan certs revoke: no certificate with serial {args.serial!r}", file=sys.stderr)
            return 1
        ctx.audit(s, user=_actor(), ip="local", action="mfa.cert.revoke", obj=row.serial,
                  detail={"reason": args.reason})
    print(f"revoked {row.serial}; CRL {ca.crl_path}")
    return 0


def cmd_audit_verify(args) -> int:
    from lingtan_proxy import audit

    db, ctx = _context(_settings(args))
    reports = []
    with db() as s:
        reports.append(("audit_log", audit.verify(s, ctx.audit_key)))
    for path in args.archive or []:
        reports.append((path, audit.verify_archive(Path(path), ctx.audit_key)))
    bad = False
    for name, rep in reports:
        status = "OK" if rep.ok else "TAMPERED"
        print(f"{name}: {status}: {rep.checked} records (seq {rep.first_seq}..{rep.last_seq})")
        for p in rep.problems:
            print(f"  {p}")
        bad |= not rep.ok
    return 2 if bad else 0


def _utc_day(text: str) -> datetime:
    from zoneinfo import ZoneInfo

    local = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return local.astimezone(UTC).replace(tzinfo=None)


def cmd_audit_export(args) -> int:
    from lingtan_proxy import audit

    db, ctx = _context(_settings(args))
    flt = audit.AuditFilter(start=_utc_day(args.start) if args.start else None,
                            end=_utc_day(args.end) + timedelta(days=1) if args.end else None)
    with db() as s:
        rows = audit.iter_matching(s, flt)
        data = audit.export_csv(rows) if args.format == "csv" else audit.export_xlsx(rows, audit.statistics(s, flt))
        ctx.audit(s, user=_actor(), ip="local", action="audit.export", obj=args.format,
                  detail={"from": args.start, "to": args.end, "file": args.output})
    Path(args.output).write_bytes(data)
    print(f"wrote {args.output}")
    return 0


def cmd_audit_archive(args) -> int:
    from lingtan_proxy import audit

    settings = _settings(args)
    db, ctx = _context(settings)
    with db() as s:
        try:
            path, n = audit.archive(s, ctx.audit_key, before=_utc_day(args.before),
                                    out_dir=Path(args.out or Path(settings.state_dir) / "audit-archive"),
                                    retention_days=ctx.policy.audit.retention_days)
        except audit.ArchiveRefused as exc:
            print(f"lingtan audit archive: {exc}", file=sys.stderr)
            return 1
        ctx.audit(s, user=_actor(), ip="local", action="audit.archive", obj=str(path or ""),
                  detail={"before": args.before, "records": n})
    print(f"archived {n} records to {path}" if n else "nothing to archive")
    return 0


def register(sub, nested) -> None:
    """Add ``proxy``, ``users``, ``certs`` and ``audit`` to the ``lingtan`` command."""
    proxy = sub.add_parser("proxy", help="the auth proxy (HTTPS front door, portal, read API)")
    psub = proxy.add_subparsers(dest="proxy_command", required=True)
    nested(psub, "serve", cmd_proxy_serve, "serve HTTPS (gunicorn) until SIGTERM")
    nested(psub, "redirect", cmd_proxy_redirect, "serve plain HTTP that redirects to HTTPS")
    users = sub.add_parser("users", help="portal users")
    usub = users.add_subparsers(dest="users_command", required=True)
    sp = nested(usub, "create-admin", cmd_users_create_admin, "create the first administrator (one-time password)")
    sp.add_argument("--username", default="admin")
    sp = nested(usub, "reset-password", cmd_users_reset_password, "give a user a new one-time password")
    sp.add_argument("username")
    certs = sub.add_parser("certs", help="the park CA and client certificates")
    csub = certs.add_subparsers(dest="certs_command", required=True)
    sp = nested(csub, "init", cmd_certs_init, "create the park CA and server certificate (idempotent)")
    sp.add_argument("--name", action="append", help="server DNS name or IP (repeatable)")
    sp = nested(csub, "issue", cmd_certs_issue, "issue a client certificate for USER")
    sp.add_argument("user")
    sp.add_argument("--days", type=int, default=365)
    sp.add_argument("--out", help="directory for USER-SERIAL.crt/.key/.p12 (default: .)")
    sp = nested(csub, "revoke", cmd_certs_revoke, "revoke a certificate (it goes on the CRL)")
    sp.add_argument("serial")
    sp.add_argument("--reason", default="unspecified")
    aud = sub.add_parser("audit", help="the audit log")
    asub = aud.add_subparsers(dest="audit_command", required=True)
    sp = nested(asub, "verify", cmd_audit_verify, "check the hash chain; exit 2 if any record was altered or deleted")
    sp.add_argument("--archive", action="append", help="also check an archive file (repeatable)")
    sp = nested(asub, "export", cmd_audit_export, "export records to CSV or XLSX")
    sp.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    sp.add_argument("--from", dest="start", help="YYYY-MM-DD (Asia/Shanghai)")
    sp.add_argument("--to", dest="end", help="YYYY-MM-DD, inclusive")
    sp.add_argument("-o", "--output", required=True)
    sp = nested(asub, "archive", cmd_audit_archive, "move records older than the retention period to a file")
    sp.add_argument("--before", required=True, help="YYYY-MM-DD; at least retention_days (180) ago")
    sp.add_argument("--out", help="archive directory (default <state>/audit-archive)")


__all__ = ["register", "create_first_admin", "argparse"]
