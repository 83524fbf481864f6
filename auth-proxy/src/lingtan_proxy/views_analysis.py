"""The portal's energy-analysis pages, one per topic (docs/analysis.md; manual: screens.html#analysis).

Each page asks the calc-service's analysis endpoint as the user (within the user's enterprise
scope), shows its tables, and hands ``analysis.js`` the chart data in a ``data-chart``
attribute, which draws it with the vendored uPlot (no inline script: CSP ``script-src 'self'``).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from lingtan.errors import ApiError
from lingtan_proxy.api import allowed_entities, calc_get
from lingtan_proxy.context import client_ip, state
from lingtan_proxy.guards import require
from lingtan_proxy.rbac import permissions_of
from lingtan_proxy.upstream import recommendation_entity
from lingtan_proxy.views_portal import _entity_choices

bp = Blueprint("analysis", __name__, url_prefix="/analysis")
TOPICS = ("structure", "cost", "compare", "trend", "pareto", "balance", "efficiency", "benchmarks", "recommendations",
          "reports")
#: the query parameters each topic passes on to the calc-service, besides entity
PARAMS = {"structure": ("start", "end", "by"), "cost": ("start", "end"), "compare": ("start", "end", "by", "base"),
          "trend": ("end", "months"), "pareto": ("start", "end", "level", "metric"), "balance": ("start", "end"),
          "efficiency": ("start", "end"), "benchmarks": ("start", "end"), "recommendations": ("status",),
          "reports": ("kind",)}
CHOICES = {"by": ("carrier", "enterprise", "unit", "usage", "flow", "meter"), "base": ("previous", "last_year"),
           "status": ("open,acknowledged", "dismissed", "resolved"), "kind": ("day", "month", "year"),
           "level": ("unit", "meter"), "metric": ("energy", "co2", "cost")}


@bp.get("/")
@require("data.read")
def index():
    return redirect(url_for("analysis.page", topic="structure"))


def _form(topic: str) -> dict[str, str]:
    """The page's parameters with their defaults: the last seven days, by carrier, the previous period."""
    today = date.today()
    defaults = {"start": (today - timedelta(days=7)).isoformat(), "end": (today + timedelta(days=1)).isoformat(),
                "by": "carrier", "base": "previous", "months": "12", "level": "unit", "metric": "energy",
                "status": "open,acknowledged", "kind": "day"}
    if topic == "trend":
        defaults["end"] = today.replace(day=1).isoformat()
    if topic == "benchmarks":  # production is recorded per month: last month
        month = today.replace(day=1)
        defaults["start"], defaults["end"] = (month - timedelta(days=1)).replace(day=1).isoformat(), month.isoformat()
    form = {k: (request.args.get(k) or defaults[k]) for k in PARAMS[topic]}
    for key, allowed in CHOICES.items():
        if key in form and form[key] not in allowed:
            form[key] = defaults[key]
    return form


@bp.get("/<any(structure, cost, compare, trend, pareto, balance, efficiency, benchmarks, recommendations, reports):topic>")
@require("data.read")
def page(topic: str):
    choices = _entity_choices()
    entity = request.args.get("entity") or (choices[0][0] if choices else None)
    if entity is None or entity not in dict(choices):
        abort(403)
    form = _form(topic)
    body, error = None, request.args.get("error")
    path = topic if topic in ("recommendations", "reports") else f"analysis/{topic}"
    try:
        body = calc_get(path, {"entity": entity, **form})
    except ApiError as exc:
        error = exc.message
    return render_template("analysis.html", topic=topic, topics=TOPICS, choices=choices, entity=entity, form=form,
                           options=CHOICES, body=body, error=error, chart=chart_data(topic, body) if body else None,
                           may_decide="recommendation.decide" in permissions_of(g.user),
                           may_export="data.export" in permissions_of(g.user), done=request.args.get("done"),
                           today=date.today().isoformat())


def _post_and_audit(path: str, body: dict[str, Any], ok: int, action: str, obj: str, detail: dict[str, Any]) -> str | None:
    """POST ``body`` to the calc-service as the user and audit the outcome; the error message, or None on ``ok``."""
    st = state()
    up = st.calc.request("POST", path, {"X-Lingtan-User": g.user.username, "Content-Type": "application/json"},
                         json.dumps(body).encode())
    raw, status = up.read(), up.status
    st.ctx.audit(g.db, user=g.user.username, ip=client_ip(), action=action, obj=obj,
                 result="success" if status == ok else "failure", detail={**detail, "status": status})
    if status == ok:
        return None
    try:
        return str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"calc-service answered {status}"


@bp.post("/reports/generate")
@require("data.export")
def generate_report():
    """Generate a report now (XLSX and PDF) for an entity in the user's scope; audited either way."""
    entity = request.form.get("entity", "park")
    if entity not in allowed_entities():
        abort(403)
    body = {"entity": entity, "kind": request.form.get("kind", "day"), "start": request.form.get("start", ""),
            "lang": request.form.get("lang", "zh")}
    error = _post_and_audit("/api/v1/reports", body, 201, "report.generate", f"report:{entity}", body)
    outcome = {"error": error} if error else {"done": "generate"}
    return redirect(url_for("analysis.page", topic="reports", entity=entity, kind=body["kind"], **outcome))


@bp.post("/recommendations/<int:row_id>/<any(acknowledge, dismiss):decision>")
@require("recommendation.decide")
def decide_recommendation(row_id: int, decision: str):
    """Acknowledge or dismiss a recommendation of an entity in the user's scope; audited either way."""
    entity = recommendation_entity(row_id)
    if entity not in allowed_entities():
        abort(403)
    reason = request.form.get("reason", "")[:2000]
    error = _post_and_audit(f"/api/v1/recommendations/{row_id}/{decision}", {"reason": reason}, 200,
                            "recommendation.decide", f"recommendation:{row_id}",
                            {"decision": decision, "entity": entity, "reason": reason[:300]})
    outcome = {"error": error} if error else {"done": decision}
    return redirect(url_for("analysis.page", topic="recommendations", entity=entity, **outcome))


def _label(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    return " / ".join(str(row.get(k) or "") for k in keys if row.get(k) not in (None, ""))


def chart_data(topic: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """What analysis.js draws: ``kind`` (bars, pareto, lines), category ``labels`` and ``series``."""
    if topic == "structure":
        rows = body["rows"]
        return {"kind": "bars", "labels": [_label(r, ("entity", "enterprise", "unit_id", "meter", "carrier", "usage", "flow"))
                                           for r in rows], "series": [{"name": "tce", "values": [r["tce"] for r in rows]}]}
    if topic == "cost":
        rows = body["bands"]
        return {"kind": "bars", "labels": [_label(r, ("carrier", "band")) for r in rows],
                "series": [{"name": "CNY", "values": [r["cost"] for r in rows]}]}
    if topic == "compare":
        rows = body["rows"]
        labels = [_label(r, ("entity", "enterprise", "unit_id", "meter", "carrier", "usage", "flow")) for r in rows]
        return {"kind": "bars", "labels": labels, "series": [{"name": "base", "values": [r["base"] for r in rows]},
                                                             {"name": "current", "values": [r["current"] for r in rows]}]}
    if topic == "trend":
        rows, fit = body["rows"], body["trend"]
        known = [i for i, r in enumerate(rows) if r["tce"] is not None]
        line = [None] * len(rows)
        if known:  # the fitted line through the months with data (slope per month, anchored at the fit's mean)
            mean_x = sum(known) / len(known)
            mean_y = sum(rows[i]["tce"] for i in known) / len(known)
            line = [mean_y + fit["slope"] * (i - mean_x) for i in range(len(rows))]
        return {"kind": "lines", "labels": [r["month"] for r in rows],
                "series": [{"name": "tce", "values": [r["tce"] for r in rows]}, {"name": "trend", "values": line}]}
    if topic == "pareto":
        rows = body["rows"]
        return {"kind": "pareto", "labels": [_label(r, ("enterprise", "unit_id", "meter")) for r in rows],
                "series": [{"name": body["units"]["value"], "values": [r["value"] for r in rows]},
                           {"name": "cumulative", "values": [r["cumulative_share"] for r in rows]}]}
    if topic == "benchmarks":
        rows = body["rows"]
        return {"kind": "bars", "labels": [_label(r, ("entity", "product")) for r in rows],
                "series": [{"name": "kgce/t", "values": [r["specific"] for r in rows]},
                           {"name": "limit", "values": [r["grade_3"] for r in rows]}]}
    return None
