"""HTTP API of the notification bridge, ``/api/v1``.

``POST /api/v1/grafana`` takes the body of Grafana's webhook contact point (unified alerting, ``version``
"1"; Alertmanager's "4" is the same shape), stores it and its deliveries, and answers 200 only once they
are on disk. It requires ``Authorization: Bearer <token>`` (the contact point's "Authorization Header"),
as do the operators' ``/deliveries`` endpoints. ``GET /api/v1/health`` is open.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any, Literal, TypeVar

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lingtan.errors import ApiError
from lingtan_notify.bridge import Bridge, bridge_of
from lingtan_notify.queue import STATES
from lingtan_notify.reports import ReportPayload

bp = Blueprint("notify_api", __name__, url_prefix="/api/v1")
M = TypeVar("M", bound=BaseModel)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # Grafana adds fields between versions; keep them


def _iso(v: str | None) -> str | None:
    if v:
        try:
            datetime.fromisoformat(v)
        except ValueError:
            raise ValueError("is not an RFC 3339 time") from None
    return v


class GrafanaAlert(_Open):
    """One alert of the notification (field names as Grafana sends them)."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: str | None = None  # Grafana's field names
    endsAt: str | None = None
    generatorURL: str = ""
    fingerprint: str = ""
    silenceURL: str = ""
    dashboardURL: str = ""
    panelURL: str = ""
    values: dict[str, Any] | None = None
    valueString: str = ""

    _times = field_validator("startsAt", "endsAt")(_iso)


class GrafanaPayload(_Open):
    """The webhook body: a group of alerts Grafana's notification policy sends to this contact point."""

    receiver: str = ""
    status: Literal["firing", "resolved"]
    alerts: list[GrafanaAlert] = Field(min_length=1)
    groupLabels: dict[str, str] = {}
    commonLabels: dict[str, str] = {}
    commonAnnotations: dict[str, str] = {}
    externalURL: str = ""
    version: str = "1"
    groupKey: str = ""
    truncatedAlerts: int = Field(0, ge=0)
    orgId: int | None = None
    title: str = ""
    state: str = ""
    message: str = ""


def _bridge() -> Bridge:
    return bridge_of(current_app)


def _authorize() -> None:
    """401 unless the request carries the configured bearer token."""
    bridge = _bridge()
    expected = bridge.cfg.secret(bridge.cfg.webhook.token_env) or ""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> (the webhook contact point's "
                       "Authorization header, scheme Bearer)")
    if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "the bearer token is not valid for this bridge")


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _problem(e: Any) -> str:
    got = e.get("input")
    shown = repr(got) if len(repr(got)) <= 120 else repr(got)[:117] + "..."  # a file's content is not echoed whole
    return f"{_loc(e['loc'])}: {e['msg']}" + ("" if isinstance(got, dict | list) else f" (got {shown})")


def _body(model: type[M], what: str) -> M:
    """The JSON body validated as ``model``; a 400 naming the first bad field otherwise."""
    raw = request.get_json(silent=True)
    if not isinstance(raw, dict):
        raise ApiError(400, "bad_json", "the body is not a JSON object (Content-Type: application/json)")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        detail = "; ".join(_problem(e) for e in errs[:10])
        raise ApiError(400, "invalid_payload", f"not {what}: {detail}", _loc(errs[0]["loc"]) or None) from None


@bp.route("/grafana", methods=["POST", "PUT"])
def grafana_webhook():
    """Accept a Grafana webhook notification: validate, store with its deliveries, then answer 200."""
    _authorize()
    payload = _body(GrafanaPayload, "a Grafana webhook notification")
    body = _bridge().accept(payload.model_dump(mode="json"), request.remote_addr or "")
    return jsonify(body), 200


@bp.post("/reports")
def report():
    """Accept a scheduled report (docs/analysis.md §8): check its files, store them with one e-mail per
    recipient, then answer 200 with the count (0 when no group receives this kind)."""
    _authorize()
    payload = _body(ReportPayload, "a report")
    return jsonify(_bridge().accept_report(payload, request.remote_addr or "")), 200


@bp.get("/health")
def health():
    bridge = _bridge()
    counts = bridge.queue.counts()
    ok = bridge.worker.alive and not bridge.worker.last_error
    return jsonify({"status": "ok" if ok else "degraded", "worker": bridge.worker.alive,
                    "worker_error": bridge.worker.last_error or None, "queue": counts,
                    "channels": sorted(bridge.cfg.providers.configured())})


def _int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
        if not lo <= v <= hi:
            raise ValueError
    except ValueError:
        raise ApiError(400, f"bad_{name}", f"{name} {raw!r} is not a whole number from {lo} to {hi}", name) from None
    return v


@bp.get("/deliveries")
def deliveries():
    """Deliveries, newest first: ``?status=pending|sending|delivered|failed``, ``?notification=ID``, ``?limit=``."""
    _authorize()
    status = request.args.get("status") or None
    if status is not None and status not in STATES:
        raise ApiError(400, "bad_status", f"status {status!r} is not one of {', '.join(STATES)}", "status")
    note = _int_arg("notification", None, 1, 2**62)
    limit = _int_arg("limit", 100, 1, 1000) or 100
    bridge = _bridge()
    rows = [d.as_dict() for d in bridge.queue.list(status, note, limit)]
    return jsonify({"count": len(rows), "queue": bridge.queue.counts(), "deliveries": rows})


@bp.get("/deliveries/<int:delivery_id>")
def delivery(delivery_id: int):
    _authorize()
    d = _bridge().queue.get(delivery_id)
    if d is None:
        raise ApiError(404, "not_found", f"no delivery {delivery_id}")
    return jsonify(d.as_dict())


@bp.post("/deliveries/<int:delivery_id>/retry")
def retry(delivery_id: int):
    """Put a failed delivery back in the queue (its attempts start again); other states are left alone."""
    _authorize()
    bridge = _bridge()
    d = bridge.queue.requeue(delivery_id)
    if d is None:
        raise ApiError(404, "not_found", f"no delivery {delivery_id}")
    bridge.worker.wake()
    return jsonify(d.as_dict())
