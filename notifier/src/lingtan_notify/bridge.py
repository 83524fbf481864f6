"""One bridge's working parts, and how a Grafana notification becomes deliveries.

:class:`Bridge` holds the config, the compiled templates (:mod:`lingtan_notify.templates`), the queue
(:mod:`lingtan_notify.queue`) and the delivery worker (:mod:`lingtan_notify.deliver`); the API
(:mod:`lingtan_notify.api`) works with it and the app factory (:mod:`lingtan_notify.app`) builds it.
:func:`plan_deliveries` routes and renders a payload; ``lingtan notify test`` uses it without a queue.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from lingtan.db import make_engine, session_factory
from lingtan_notify.config import NotifyConfig
from lingtan_notify.deliver import Dispatcher, Worker
from lingtan_notify.queue import DeliveryQueue, DeliverySpec
from lingtan_notify.reports import ReportPayload, attachments_of, plan_report_deliveries
from lingtan_notify.templates import Renderer, alert_context

log = logging.getLogger(__name__)
EXTENSION = "lingtan_notify"  # the key of the bridge in ``app.extensions``


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

    def accept_report(self, payload: ReportPayload, remote_addr: str = "") -> dict[str, Any]:
        """Check a report's files, queue one e-mail per recipient with them attached, wake the worker."""
        files = attachments_of(payload)
        specs = plan_report_deliveries(self.cfg, payload, files)
        record = {**payload.model_dump(mode="json", exclude={"files"}), "status": "report",
                  "files": [{"name": f.name, "sha256": f.sha256, "size": len(f.data)} for f in files]}
        note_id, n = self.queue.enqueue(record, specs, remote_addr, files)
        self.worker.wake()
        if not n:
            log.warning("report %s (%s %s %s) has no recipients: no group lists %r in its reports", payload.report,
                        payload.entity, payload.kind, payload.period, payload.kind)
        log.info("report %s accepted as notification %d: %d e-mail(s)", payload.report, note_id, n)
        return {"accepted": True, "notification_id": note_id, "deliveries": n}

    def close(self) -> None:
        """Stop the worker (a delivery in flight finishes) and release the database."""
        self.worker.stop()
        self.engine.dispose()


def bridge_of(app: Flask) -> Bridge:
    """The bridge that :func:`lingtan_notify.app.create_app` attached to ``app``."""
    return app.extensions[EXTENSION]
