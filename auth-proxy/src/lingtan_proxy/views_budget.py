"""The portal's budget page (docs/budget.md; manual: screens.html#budgets).

It shows an entity's budgets of a year as the calc-service computes them (plan, actual to date,
projected outturn with its interval, what remains per day, the months, the intensity targets),
the entity's warnings, and, for park-wide users, the proposals waiting for a second person.
Setting a plan, proposing the dynamic re-spread and deciding a proposal go to the calc-service as
the user and are audited; the calc-service refuses an approval by the proposal's own author.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from lingtan.errors import ApiError
from lingtan_proxy.api import allowed_entities, calc_get
from lingtan_proxy.guards import require
from lingtan_proxy.rbac import PARK, permissions_of
from lingtan_proxy.views_analysis import _post_and_audit
from lingtan_proxy.views_portal import _entity_choices

bp = Blueprint("budgets", __name__, url_prefix="/budgets")
KINDS = ("energy", "carbon")
RULES = ("days", "equal", "last_year")


def _chart(budget: dict[str, Any]) -> dict[str, Any]:
    """Plan and actual per month, drawn by analysis.js as bars."""
    months = budget["months"]
    return {"kind": "bars", "labels": [m["month"] for m in months],
            "series": [{"name": "plan", "values": [m["plan"] for m in months]},
                       {"name": "actual", "values": [m["actual"] for m in months]}]}


@bp.get("/")
@require("data.read")
def page():
    choices = _entity_choices()
    entity = request.args.get("entity") or (choices[0][0] if choices else None)
    if entity is None or entity not in dict(choices):
        abort(403)
    year = request.args.get("year", "")
    year = int(year) if year.isdigit() and 2000 <= int(year) <= 2099 else date.today().year
    perms, error = permissions_of(g.user), request.args.get("error")
    budgets, warnings, proposals = [], [], []
    try:
        budgets = calc_get("budgets", {"entity": entity, "year": year})["budgets"]
        warnings = calc_get("warnings", {"entity": entity, "lang": g.locale})["warnings"]
        if PARK in allowed_entities():
            proposals = calc_get("budgets/proposals", {"status": "pending"})["proposals"]
    except ApiError as exc:
        error = exc.message
    return render_template("budgets.html", choices=choices, entity=entity, year=year, budgets=budgets,
                           charts=[_chart(b) for b in budgets], warnings=warnings, proposals=proposals,
                           error=error, done=request.args.get("done"), kinds=KINDS, rules=RULES,
                           may_edit="budget.edit" in perms and PARK in allowed_entities(),
                           may_approve="budget.approve" in perms and PARK in allowed_entities())


def _back(entity: str, year: object, error: str | None, done: str):
    outcome = {"error": error} if error else {"done": done}
    return redirect(url_for("budgets.page", entity=entity, year=year, **outcome))


@bp.post("/plan")
@require("budget.edit")
def create_plan():
    entity = request.form.get("entity", PARK)
    if entity not in allowed_entities() or PARK not in allowed_entities():
        abort(403)
    try:
        year, annual = int(request.form.get("year", "")), float(request.form.get("annual", ""))
    except ValueError:
        return _back(entity, request.form.get("year"), "year and annual must be numbers", "plan")
    body = {"entity": entity, "year": year, "kind": request.form.get("kind", "energy"), "annual": annual,
            "rule": request.form.get("rule", "days"), "reason": request.form.get("reason", "")[:2000]}
    error = _post_and_audit("/api/v1/budgets", body, 201, "budget.plan", f"budget:{entity}:{year}",
                            {k: body[k] for k in ("entity", "year", "kind", "annual", "rule")})
    return _back(entity, year, error, "plan")


@bp.post("/<int:plan_id>/respread")
@require("budget.edit")
def propose_respread(plan_id: int):
    """Propose the dynamic re-spread the calc-service computed for the plan (a reallocation between months)."""
    entity, year = request.form.get("entity", PARK), request.form.get("year", "")
    if PARK not in allowed_entities():
        abort(403)
    budget = next((b for b in calc_get("budgets", {"entity": entity, "year": year})["budgets"]
                   if b["plan"]["id"] == plan_id), None)
    if budget is None or not budget.get("respread"):
        return _back(entity, year, f"plan {plan_id} has no re-spread to propose", "propose")
    body = {"year": budget["plan"]["year"], "kind": budget["plan"]["kind"], "type": "reallocation",
            "reason": request.form.get("reason", "")[:2000],
            "changes": [{"plan_id": plan_id, "monthly": budget["respread"]}]}
    error = _post_and_audit("/api/v1/budgets/proposals", body, 201, "budget.propose", f"budget-plan:{plan_id}",
                            {"type": "reallocation", "entity": entity, "reason": body["reason"][:300]})
    return _back(entity, year, error, "propose")


@bp.post("/proposals/<int:proposal_id>/<any(approve, reject):decision>")
@require("budget.approve")
def decide(proposal_id: int, decision: str):
    if PARK not in allowed_entities():
        abort(403)
    reason = request.form.get("reason", "")[:2000]
    error = _post_and_audit(f"/api/v1/budgets/proposals/{proposal_id}/{decision}", {"reason": reason}, 200,
                            "budget.decide", f"budget-proposal:{proposal_id}",
                            {"decision": decision, "reason": reason[:300]})
    return _back(request.form.get("entity", PARK), request.form.get("year", ""), error, decision)
