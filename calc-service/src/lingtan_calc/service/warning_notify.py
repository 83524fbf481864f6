"""Sending the calc-service's warnings through the notifier (docs/budget.md §4).

Each due row of the warning outbox is posted to the notifier's ``POST /api/v1/grafana`` as one
alert in the body of Grafana's webhook contact point, so that the notifier routes it like any
Grafana alert: by the ``enterprise`` label to that enterprise's recipients (the park's to the
default groups), by ``severity`` to the groups that take it, by SMS, e-mail and the robots.
The summary and description come in Chinese and English (``summary_zh``, ``summary_en``, …);
the notifier picks the recipient group's language. Grafana's own copies of these rules are
muted in its notification policy (grafana/src/lingtan_grafana/alerting.py), so that each
warning reaches each recipient once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from lingtan_calc.adapters import warning_store
from lingtan_calc.adapters.meter_events import local
from lingtan_calc.service.budget import entity_name
from lingtan_calc.service.report_mail import PermanentError, drain, post_to_notifier

log = logging.getLogger(__name__)
#: the label that marks an alert as the calc-service's (Grafana's copies carry it too, to be muted)
SOURCE_LABEL = ("source", "lingtan-calc")


def alert_of(svc, warning: warning_store.WarningRow, alert_status: str, level: str) -> dict[str, Any]:
    """One Grafana-style alert of a stored warning."""
    labels = {"alertname": f"lingtan_{warning.rule}", "severity": level, "entity": warning.entity,
              "rule": warning.rule, "subject": warning.subject, SOURCE_LABEL[0]: SOURCE_LABEL[1]}
    if warning.entity != "park":  # the notifier routes by this label; the park's go to the default groups
        labels["enterprise"] = warning.entity
        labels["enterprise_name"] = entity_name(svc, warning.entity)
    texts = warning.texts
    annotations = {"summary": texts["summary_zh"], "description": texts["description_zh"],
                   "summary_zh": texts["summary_zh"], "summary_en": texts["summary_en"],
                   "description_zh": texts["description_zh"], "description_en": texts["description_en"]}
    alert = {"status": alert_status, "labels": labels, "annotations": annotations,
             "startsAt": local(warning.first_at).isoformat(), "fingerprint": f"lingtan-calc-warning-{warning.id}",
             "values": {"value": warning.value, "threshold": warning.threshold}}
    if alert_status == "resolved" and warning.resolved_at is not None:
        alert["endsAt"] = local(warning.resolved_at).isoformat()
    return alert


def payload_of(svc, session, row: warning_store.WarningDeliveryRow) -> dict[str, Any]:
    warning = session.get(warning_store.WarningRow, row.warning_id)
    if warning is None:
        raise PermanentError(f"warning {row.warning_id} is not stored")
    alert = alert_of(svc, warning, row.alert_status, row.level)
    return {"receiver": "lingtan-calc", "status": row.alert_status, "alerts": [alert],
            "groupLabels": {"alertname": alert["labels"]["alertname"]}, "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"], "externalURL": "", "version": "1",
            "groupKey": f"lingtan-calc-warning-{warning.id}", "title": warning.texts["summary_zh"]}


def deliver_due(svc, now: dt.datetime | None = None) -> dict[str, int]:
    """Post every due warning message to the notifier; counts sent, retried later and failed."""
    if not svc.settings.notify_url:
        return {"sent": 0, "retry": 0, "failed": 0}
    now = now or dt.datetime.now(dt.UTC)
    with svc.sessions() as s:
        def send(row: warning_store.WarningDeliveryRow) -> None:
            answer = post_to_notifier(svc, "/api/v1/grafana", payload_of(svc, s, row), "warning")
            warning_store.mark_sent(row, answer.get("notification_id"), int(answer.get("deliveries") or 0))
            if not row.deliveries:
                log.warning("warning message %d: the notifier has no recipients for it", row.id)

        return drain(svc, s, warning_store.due(s, now), send, "warning message")
