"""``lingtan notify``: serve the bridge, check its config, send a test message.

Registered into ``lingtan`` by :func:`register`. The config file is ``--config``, else
``$LINGTAN_NOTIFY_CONFIG``, else ``<state_dir>/notify.yaml``. Project modules are imported inside
the commands: every ``lingtan`` command builds this parser, and only ``notify …`` needs Flask,
SQLAlchemy and Jinja2.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("lingtan_notify")


def _setup(args: argparse.Namespace):
    """(ServeSettings, NotifyConfig) for ``args``; a config error exits with its message."""
    from lingtan_notify.config import ConfigError, load_config, serve_settings

    try:
        serve = serve_settings(state_dir=Path(args.state_dir).absolute() if getattr(args, "state_dir", None) else None)
        return serve, load_config(Path(args.config) if getattr(args, "config", None) else serve.config_path)
    except ConfigError as exc:
        raise SystemExit(f"lingtan notify: {exc}") from None


def cmd_notify_serve(args: argparse.Namespace) -> int:
    """Serve the webhook and deliver until SIGTERM/SIGINT."""
    from waitress import serve as waitress_serve

    from lingtan_notify.app import bridge_of, create_app

    settings, cfg = _setup(args)
    app = create_app(cfg, database_url=settings.database_url)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds through finally: the worker stops cleanly
    log.info("notification bridge on http://%s:%d (config %s, channels %s)", settings.host, settings.port,
             settings.config_path if not getattr(args, "config", None) else args.config,
             ", ".join(sorted(cfg.providers.configured())) or "none")
    try:
        waitress_serve(app, host=settings.host, port=settings.port, threads=8, ident="lingtan-notify")
    finally:
        bridge_of(app).close()
    return 0


def cmd_notify_check(args: argparse.Namespace) -> int:
    """Validate the config (secrets present, templates render) and print what it routes."""
    settings, cfg = _setup(args)
    print(f"config valid; channels: {', '.join(sorted(cfg.providers.configured())) or 'none'}; "
          f"queue: {settings.database_url.split('@')[-1]}")
    for where, g in cfg.groups():
        print(f"  recipients.{where} {g.name}: {len(g.phones)} phone(s), {len(g.emails)} e-mail(s), "
              f"severities {','.join(g.severities)}, channels {','.join(g.channels)}")
    return 0


def sample_payload(enterprise: str | None, severity: str, status: str, locale: str,
                 enterprise_label: str = "enterprise", severity_label: str = "severity") -> dict:
    """A Grafana-shaped notification with one test alert."""
    now = datetime.now(UTC).replace(microsecond=0)
    labels = {"alertname": "通知测试" if locale == "zh" else "NotificationTest", severity_label: severity}
    if enterprise:
        labels[enterprise_label] = enterprise
    summary = "这是一条测试消息，请忽略" if locale == "zh" else "This is a test message; please ignore it"
    return {"receiver": "lingtan-notify-test", "status": status, "version": "1", "orgId": 1,
            "alerts": [{"status": status, "labels": labels, "annotations": {"summary": summary},
                        "startsAt": now.isoformat().replace("+00:00", "Z"),
                        "endsAt": now.isoformat().replace("+00:00", "Z") if status == "resolved"
                        else "0001-01-01T00:00:00Z", "fingerprint": uuid.uuid4().hex[:16]}]}


def cmd_notify_test(args: argparse.Namespace) -> int:
    """Send one test alert to the recipients it routes to, now and once each; exit 1 if any send failed."""
    from lingtan_notify.bridge import plan_deliveries
    from lingtan_notify.deliver import DeliveryError, Dispatcher, mask
    from lingtan_notify.queue import Claimed
    from lingtan_notify.templates import Renderer

    _settings, cfg = _setup(args)
    renderer = Renderer(cfg)
    payload = sample_payload(args.enterprise, args.severity.lower(), args.status, cfg.locale, cfg.enterprise_label,
                           cfg.severity_label)
    specs, _ = plan_deliveries(cfg, renderer, payload)
    if not specs:
        print(f"no recipients for enterprise {args.enterprise or '(none)'} and severity {args.severity} "
              f"({args.status}): check recipients in the config", file=sys.stderr)
        return 1
    dispatcher = Dispatcher(cfg, renderer)
    failures = 0
    for i, spec in enumerate(specs, 1):
        try:
            dispatcher.send(Claimed(i, spec.channel, spec.target, spec.subject, spec.body, spec.meta, 1))
            print(f"ok      {spec.channel:8} {mask(spec.target)} ({spec.group_name})")
        except DeliveryError as exc:
            failures += 1
            print(f"FAILED  {spec.channel:8} {mask(spec.target)} ({spec.group_name}): {exc}")
    return 1 if failures else 0


def register(sub, nested) -> None:
    """Add ``notify serve|check|test`` to the ``lingtan`` command."""
    notify = sub.add_parser("notify", help="the notification bridge (Grafana alerts to SMS, e-mail, DingTalk, WeCom)")
    nsub = notify.add_subparsers(dest="notify_command", required=True)
    sp = nested(nsub, "serve", cmd_notify_serve, "serve Grafana's webhook and deliver notifications until SIGTERM")
    sp.add_argument("--config", help="notify.yaml (default $LINGTAN_NOTIFY_CONFIG or <state_dir>/notify.yaml)")
    sp = nested(nsub, "check", cmd_notify_check, "validate the notification config and list the recipient groups")
    sp.add_argument("--config")
    sp = nested(nsub, "test", cmd_notify_test, "send a test alert to the recipients of an enterprise and severity")
    sp.add_argument("--config")
    sp.add_argument("--enterprise", help="enterprise id (the alert's enterprise label); default: none")
    sp.add_argument("--severity", default="critical")
    sp.add_argument("--status", choices=["firing", "resolved"], default="firing")


__all__ = ["register", "sample_payload"]
