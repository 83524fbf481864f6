"""Reports on the calc API (docs/analysis.md §8).

``GET  /api/v1/reports``             the current reports of an entity (``kind``, ``all=1`` with superseded ones)
``GET  /api/v1/reports/<id>``        one report's record (period, language, format, SHA-256, reason)
``GET  /api/v1/reports/<id>/file``   the file itself, checked against its SHA-256 first
``POST /api/v1/reports``             generate now: ``{"entity", "kind", "start", "lang", "formats"}``
``GET  /api/v1/reports/deliveries``  the e-mail outbox of an entity's reports (``status``: pending, sent, failed)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, jsonify, request, send_file

from lingtan.errors import ApiError
from lingtan_calc.adapters import report_delivery
from lingtan_calc.adapters.report_store import FORMATS, ReportRow, as_dict, current_reports
from lingtan_calc.service.api import _entity, _svc, parse_time
from lingtan_calc.service.reports import generate

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")


@bp.get("")
def reports():
    entity = _entity()
    kind = request.args.get("kind")
    if kind not in (None, "day", "month", "year"):
        raise ApiError(400, "bad_kind", f"kind {kind!r} is not day, month or year", "kind")
    with _svc().sessions() as s:
        rows = [as_dict(r) for r in current_reports(s, entity, kind, request.args.get("all") == "1")]
    return jsonify({"entity": entity, "rows": rows})


@bp.get("/deliveries")
def deliveries():
    entity = _entity()
    status = request.args.get("status")
    if status not in (None, *report_delivery.STATES):
        raise ApiError(400, "bad_status", f"status {status!r} is not one of {', '.join(report_delivery.STATES)}",
                       "status")
    with _svc().sessions() as s:
        rows = [report_delivery.as_dict(r) for r in report_delivery.listed(s, entity, status)]
    return jsonify({"entity": entity, "notifier": bool(_svc().settings.notify_url), "rows": rows})


def _row(row_id: int) -> ReportRow:
    with _svc().sessions() as s:
        row = s.get(ReportRow, row_id)
    if row is None:
        raise ApiError(404, "not_found", f"no report {row_id}")
    return row


@bp.get("/<int:row_id>")
def report(row_id: int):
    return jsonify(as_dict(_row(row_id)))


@bp.get("/<int:row_id>/file")
def report_file(row_id: int):
    row = _row(row_id)
    path = Path(row.path)
    if not path.exists():
        raise ApiError(410, "file_missing", f"report {row_id}: the archived file {path.name} is missing from the archive")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise ApiError(409, "file_changed", f"report {row_id}: {path.name} no longer matches its SHA-256 {row.sha256}")
    name = f"{row.entity}-{row.kind}-{row.period}-{row.lang}.{row.format}"
    resp = send_file(path, mimetype=FORMATS[row.format], as_attachment=True, download_name=name)
    resp.headers["X-Content-SHA256"] = row.sha256
    return resp


@bp.post("")
def create_report():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", 'expected {"entity", "kind", "start", "lang", "formats"}')
    entity = str(body.get("entity", "park"))
    known = {"park", *(e.id for e in _svc().park.enterprises)}
    if entity not in known:
        raise ApiError(404, "unknown_entity", f"entity {entity!r} is not 'park' or an enterprise of the park", "entity")
    formats = body.get("formats", ["xlsx", "pdf"])
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise ApiError(400, "bad_format", f"formats {formats!r} is not a list of xlsx and/or pdf", "formats")
    start = parse_time(body.get("start"), "start")
    rows = generate(_svc(), entity, str(body.get("kind", "")), start, str(body.get("lang", "zh")),
                    f"on demand by {request.headers.get('X-Lingtan-User', 'anonymous')}", tuple(formats))
    return jsonify({"rows": [as_dict(r) for r in rows]}), 201
