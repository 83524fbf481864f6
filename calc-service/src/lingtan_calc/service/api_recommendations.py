"""Recommendations on the calc API (docs/analysis.md §7).

``GET  /api/v1/recommendations``                  the stored recommendations of an entity (default: open
                                                  and acknowledged), ranked by the estimated saving
``GET  /api/v1/recommendations/<id>``             one recommendation
``POST /api/v1/recommendations/<id>/acknowledge`` noted by a manager (``reason`` optional)
``POST /api/v1/recommendations/<id>/dismiss``     set aside, with the ``reason`` (required)
``POST /api/v1/recommendations/evaluate``         evaluate now (the scheduler does it once a day)

The decision's author is ``X-Lingtan-User`` (set by the proxy, which also audits the decision).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from lingtan.errors import ApiError
from lingtan_calc.adapters.recommendation_store import (
    STATUSES,
    DecisionError,
    RecommendationRow,
    as_dict,
    decide,
    listed,
)
from lingtan_calc.service.api import _entity, _svc, _user, parse_time
from lingtan_calc.service.recommend import WINDOW_DAYS, evaluate

bp = Blueprint("recommendations", __name__, url_prefix="/api/v1/recommendations")


@bp.get("")
def recommendations():
    entity = _entity()
    raw = request.args.get("status", "open,acknowledged")
    statuses = tuple(s for s in raw.split(",") if s)
    bad = sorted(set(statuses) - set(STATUSES))
    if bad or not statuses:
        raise ApiError(400, "bad_status", f"status {raw!r}: use a comma-separated list of {', '.join(STATUSES)}", "status")
    with _svc().sessions() as s:
        rows = [as_dict(r) for r in listed(s, entity, statuses)]
    return jsonify({"entity": entity, "statuses": list(statuses), "window_days": WINDOW_DAYS,
                    "units": {"saving_tce": "tce/a", "saving_cny": "CNY/a", "saving_tco2": "tCO2/a"}, "rows": rows})


@bp.get("/<int:row_id>")
def recommendation(row_id: int):
    with _svc().sessions() as s:
        row = s.get(RecommendationRow, row_id)
        if row is None:
            raise ApiError(404, "not_found", f"no recommendation {row_id}")
        return jsonify(as_dict(row))


@bp.post("/<int:row_id>/<any(acknowledge, dismiss):decision>")
def decide_view(row_id: int, decision: str):
    body = request.get_json(silent=True)
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "bad_json", 'expected {"reason": "..."}', "reason")
    reason = (body or {}).get("reason", "")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise ApiError(400, "bad_reason", "reason must be text of at most 2000 characters", "reason")
    with _svc().sessions() as s:
        try:
            row = decide(s, row_id, decision, _user(), reason)
        except LookupError:
            raise ApiError(404, "not_found", f"no recommendation {row_id}") from None
        except DecisionError as exc:
            raise ApiError(409 if exc.field == "decision" else 400, "bad_decision", str(exc), exc.field) from None
        return jsonify(as_dict(row))


@bp.post("/evaluate")
def evaluate_view():
    body = request.get_json(silent=True) or {}
    end = parse_time(body["end"], "end") if isinstance(body, dict) and body.get("end") else None
    return jsonify({"window_days": WINDOW_DAYS, "counts": evaluate(_svc(), end)})
