"""The notification bridge's Flask application: app factory, one JSON error format.

``create_app()`` loads ``notify.yaml`` (:mod:`lingtan_notify.config`), opens the queue database and,
unless told otherwise, starts the delivery worker (:mod:`lingtan_notify.deliver`). Blueprint:
:mod:`lingtan_notify.api` (``/api/v1/...``). Run it with ``lingtan notify serve``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from sqlalchemy.exc import SQLAlchemyError

from lingtan.db import make_engine, session_factory
from lingtan.errors import ApiError, error_body, register_json_errors
from lingtan_notify.config import NotifyConfig, load_config, serve_settings
from lingtan_notify.deliver import Dispatcher, Worker
from lingtan_notify.queue import DeliveryQueue, DeliverySpec
from lingtan_notify.templates import Renderer, alert_context

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 4 * 1024 * 1024  # Grafana's webhook sends every alert of a group in one body


def plan_deliveries(cfg: NotifyConfig, renderer: Renderer,
                    payload: dict[str, Any]) -> tuple[list[DeliverySpec], list[str]]:
    """The deliveries of a validated Grafana payload, and the fingerprints of alerts nobody is told about.

    One message per alert and target; a target reached through several groups gets it once, in the
    locale of the first group.
    """
    specs: list[DeliverySpec] = []
    unrouted: list[str] = []
    for alert in payload.get("alerts") or []:
        ctx = alert_context(alert, payload, cfg)
        seen: set[tuple[str, str]] = set()
        named = renderer.localize(ctx, cfg.locale)
        meta = {k: named[k] for k in ("alertname", "severity", "severity_name", "enterprise", "enterprise_name",
                                      "summary", "fingerprint")}
        meta["alert_status"] = ctx["status"]
        for group in cfg.route(ctx["enterprise"] or None, ctx["severity"], ctx["status"]):
            locale = group.locale or cfg.locale
            targets = {"sms": group.phones, "email": group.emails, "dingtalk": ["dingtalk"], "wecom": ["wecom"]}
            for channel in group.channels:
                for target in targets[channel]:
                    if (channel, target) in seen:
                        continue
                    seen.add((channel, target))
                    subject, body = renderer.message(channel, locale, ctx)
                    specs.append(DeliverySpec(channel, target, group.name, locale, subject, body, meta))
        if not seen:
            unrouted.append(ctx["fingerprint"] or ctx["alertname"])
            log.warning("alert %s (%s, enterprise %r, severity %s, %s) has no recipients", ctx["alertname"],
                        ctx["fingerprint"], ctx["enterprise"], ctx["severity"], ctx["status"])
    return specs, unrouted


class Bridge:
    """Config, templates, queue and worker of one bridge: what the API works with."""

    def __init__(self, cfg: NotifyConfig, database_url: str):
        self.cfg = cfg
        self.renderer = Renderer(cfg)
        self.engine = make_engine(database_url)
        self.queue = DeliveryQueue(session_factory(self.engine))
        self.dispatcher = Dispatcher(cfg, self.renderer)
        self.worker = Worker(self.queue, self.dispatcher, cfg.retry)

    def plan(self, payload: dict[str, Any]) -> tuple[list[DeliverySpec], list[str]]:
        return plan_deliveries(self.cfg, self.renderer, payload)

    def accept(self, payload: dict[str, Any], remote_addr: str = "") -> dict[str, Any]:
        """Queue the deliveries of ``payload`` durably and wake the worker; the webhook's answer."""
        specs, unrouted = self.plan(payload)
        note_id, n = self.queue.enqueue(payload, specs, remote_addr)
        self.worker.wake()
        log.info("notification %d accepted: %d alert(s), %d deliveries", note_id, len(payload.get("alerts") or []), n)
        return {"accepted": True, "notification_id": note_id, "alerts": len(payload.get("alerts") or []),
                "deliveries": n, "unrouted": unrouted}

    def close(self) -> None:
        """Stop the worker (a delivery in flight finishes) and release the database."""
        self.worker.stop()
        self.engine.dispose()


def create_app(cfg: NotifyConfig | None = None, *, database_url: str | None = None, config_path: Path | None = None,
               start_worker: bool = True) -> Flask:
    """The bridge app. Without arguments: config and database from :func:`lingtan_notify.config.serve_settings`."""
    if cfg is None or database_url is None:
        serve = serve_settings()
        cfg = cfg or load_config(config_path or serve.config_path)
        database_url = database_url or serve.database_url
    bridge = Bridge(cfg, database_url)
    app = Flask("lingtan_notify")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.ensure_ascii = False  # Chinese messages stay readable
    app.json.sort_keys = False
    app.extensions["lingtan_notify"] = bridge

    from lingtan_notify.api import bp as api_bp

    app.register_blueprint(api_bp)

    register_json_errors(app)

    @app.errorhandler(ApiError)  # replaces the generic one: a 401 says how to authenticate
    def _api_error(e: ApiError):
        resp = jsonify(error_body(e.status, e.code, e.message, e.field))
        if e.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="lingtan-notify"'
        return resp, e.status

    @app.errorhandler(SQLAlchemyError)
    def _db(e: SQLAlchemyError):
        log.exception("queue database error")
        return jsonify(error_body(503, "queue_unavailable", f"the delivery queue is unavailable: "
                                  f"{e.__class__.__name__}; the notification was NOT accepted")), 503

    if start_worker:
        bridge.worker.start()
    return app


def bridge_of(app: Flask) -> Bridge:
    return app.extensions["lingtan_notify"]
