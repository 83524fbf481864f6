"""E-mailing the scheduled reports through the notifier (docs/analysis.md §8).

A report written on schedule or after a recalculation goes into the outbox
(:mod:`lingtan_calc.adapters.report_delivery`) when ``LINGTAN_NOTIFY_URL`` is set. Each scheduler
cycle posts the due ones to the notifier's ``POST /api/v1/reports`` with the bearer token
``LINGTAN_NOTIFY_TOKEN``: the files (checked against their SHA-256 first), the entity, kind and
period. The notifier sends one e-mail per address of the groups that list the report's kind in
their ``reports`` (notify.yaml), an enterprise's report to its own groups.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lingtan_calc.adapters.report_delivery import (
    ReportDeliveryRow,
    due_deliveries,
    mark_failed,
    mark_retry,
    mark_sent,
    queue_delivery,
)
from lingtan_calc.adapters.report_store import FORMATS, ReportRow

log = logging.getLogger(__name__)
#: seconds to wait for the notifier to store a report (it answers once the e-mails are on disk)
TIMEOUT_S = 30.0


def enqueue(svc, rows: list[ReportRow], reason: str) -> ReportDeliveryRow | None:
    """Put a report just written in the outbox, when a notifier is configured."""
    if not svc.settings.notify_url or not rows:
        return None
    with svc.sessions() as s:
        return queue_delivery(s, rows, reason)


class PermanentError(Exception):
    """A delivery that retrying cannot help: a file changed on disk, or the notifier refused the report."""


def _file(r: ReportRow) -> dict[str, str]:
    data = Path(r.path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != r.sha256:
        raise PermanentError(f"report file {r.path} changed since it was archived (SHA-256 {digest}, recorded "
                             f"{r.sha256}): not sent")
    return {"name": f"{r.entity}-{r.kind}-{r.period}-{r.lang}.{r.format}", "content_type": FORMATS[r.format],
            "sha256": r.sha256, "content_base64": base64.b64encode(data).decode("ascii")}


def payload_of(svc, session, row: ReportDeliveryRow) -> dict[str, Any]:
    ids = [int(i) for i in row.report_ids.split(",") if i]
    reports = [session.get(ReportRow, i) for i in ids]
    missing = [i for i, r in zip(ids, reports, strict=True) if r is None]
    if missing:
        raise PermanentError(f"reports {missing} are not in the archive")
    try:
        files = [_file(r) for r in reports]
    except OSError as exc:
        raise PermanentError(f"a report file cannot be read: {exc}") from None
    names = {e.id: e.name for e in svc.park.enterprises}
    return {"report": f"calc-report-delivery-{row.id}", "entity": row.entity,
            "entity_name": names.get(row.entity, svc.park.park.name if row.entity == "park" else row.entity),
            "kind": row.kind, "period": row.period, "lang": row.lang, "reason": row.reason, "files": files}


def post_to_notifier(svc, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    """POST ``body`` to the notifier's ``path``; raises PermanentError on a refusal of ``what``, OSError (or
    URLError) when the notifier cannot be reached or answers 5xx."""
    req = urllib.request.Request(svc.settings.notify_url.rstrip("/") + path, method="POST",
                                 data=json.dumps(body).encode(), headers={
                                     "Content-Type": "application/json",
                                     "Authorization": f"Bearer {svc.settings.notify_token}"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 - the configured notifier
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read()[:500].decode("utf-8", "replace")
        if 400 <= exc.code < 500 and exc.code not in (408, 429):  # the notifier said no: the same body stays refused
            raise PermanentError(f"the notifier refused the {what}: HTTP {exc.code}: {text}") from None
        raise OSError(f"the notifier answered HTTP {exc.code}: {text}") from None


def drain(svc, session, rows: list, send, what: str) -> dict[str, int]:
    """Try each due outbox row (a report's or a warning's): ``send(row)`` posts it and marks it sent; a
    refusal marks it failed for good, a notifier that cannot be reached leaves it due after the back-off."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for row in rows:
        try:
            send(row)
            counts["sent"] += 1
        except PermanentError as exc:
            mark_failed(row, str(exc))
            counts["failed"] += 1
            log.error("%s %d failed for good: %s", what, row.id, exc)
        except (OSError, ValueError) as exc:  # not reachable, timed out, 5xx, not JSON: try again later
            mark_retry(row, f"{exc.__class__.__name__}: {exc}")
            counts["retry"] += 1
            log.warning("%s %d not sent (attempt %d), retrying after %s: %s", what, row.id, row.attempts,
                        row.next_attempt_at, exc)
        session.commit()
    return counts


def deliver_due(svc, now: dt.datetime | None = None) -> dict[str, int]:
    """Post every due report of the outbox to the notifier; counts sent, retried later and failed."""
    if not svc.settings.notify_url:
        return {"sent": 0, "retry": 0, "failed": 0}
    now = now or dt.datetime.now(dt.UTC)
    with svc.sessions() as s:
        def send(row: ReportDeliveryRow) -> None:
            answer = post_to_notifier(svc, "/api/v1/reports", payload_of(svc, s, row), "report")
            mark_sent(row, answer.get("notification_id"), int(answer.get("deliveries") or 0))
            if not row.emails:
                log.warning("report delivery %d (%s %s %s): the notifier has no recipients for it", row.id,
                            row.entity, row.kind, row.period)

        return drain(svc, s, due_deliveries(s, now), send, "report delivery")
