"""Budgets and warnings on the calc API (docs/budget.md).

``GET  /api/v1/budgets``                        the entity's plans of a year with their standing now
                                                (or ``at`` a given time)
``GET  /api/v1/budgets/history``                every version of one plan (entity, year, kind)
``POST /api/v1/budgets``                        a new plan (version 1), allocated by its rule
``GET  /api/v1/budgets/proposals``              proposals (default: pending)
``POST /api/v1/budgets/proposals``              propose a reallocation or a revision
``POST /api/v1/budgets/proposals/<id>/approve`` a second person approves (new plan versions)
``POST /api/v1/budgets/proposals/<id>/reject``  … or rejects, with the reason
``GET  /api/v1/warnings``                       the entity's warnings (default: firing)
``POST /api/v1/warnings/evaluate``              evaluate budgets and warnings now (daily otherwise)

The author of every change is ``X-Lingtan-User`` (set by the proxy, which checks the permission
and writes the audit log). A bad body changes nothing and is answered 400 naming the field.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from flask import Blueprint, jsonify, request

from lingtan.errors import ApiError
from lingtan_calc.adapters import budget_store, warning_store
from lingtan_calc.adapters.energy_reads import totals_rows
from lingtan_calc.core.budget import tracking
from lingtan_calc.core.budget.plans import KINDS, RULES, PlanError, allocate, as_float
from lingtan_calc.service import budget
from lingtan_calc.service.api import _entity, _svc, _user, parse_time
from lingtan_calc.service.forecast import check_entity

bp = Blueprint("budgets", __name__, url_prefix="/api/v1")
TZ = "Asia/Shanghai"
INDICATORS = {"energy": ("energy_per_output_value", "energy_per_value_added", "energy_per_product"),
              "carbon": ("carbon_per_output_value", "carbon_per_value_added", "carbon_per_product")}
COUNTING = {"renewables": ("include", "exclude"), "feedstock": ("include", "exclude"), "scope2": ("location", "market")}
PLAN_FIELDS = {"entity", "year", "kind", "annual", "rule", "weights", "monthly", "counting", "targets", "reason"}


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, timestamps ISO text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "expected a JSON object")
    return body


def _year(raw: object, field: str = "year") -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 2000 <= raw <= 2099:
        raise ApiError(400, "bad_year", f"{field} {raw!r} is not a year from 2000 to 2099", field)
    return raw


def _query_year(default: int | None = None) -> int:
    raw = request.args.get("year")
    if raw is None and default is not None:
        return default
    return _year(int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) <= 4 else raw)


def _kind(raw: object) -> str:
    if not isinstance(raw, str) or raw not in KINDS:
        raise ApiError(400, "bad_kind", f"kind {raw!r} is not one of {', '.join(KINDS)}", "kind")
    return str(raw)


def _counting(kind: str, raw: object) -> dict[str, str]:
    counting = tracking.default_counting(kind)
    if raw is None:
        return counting
    if not isinstance(raw, dict):
        raise ApiError(400, "bad_counting", "counting must be an object", "counting")
    for key, value in raw.items():
        if key not in counting:
            raise ApiError(400, "bad_counting", f"counting.{key}: a {kind} budget counts with "
                                                f"{', '.join(sorted(counting))}", f"counting.{key}")
        if value not in COUNTING[key]:
            raise ApiError(400, "bad_counting", f"counting.{key} {value!r} is not one of {', '.join(COUNTING[key])}",
                           f"counting.{key}")
        counting[key] = value
    return counting


def _targets(kind: str, raw: object) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ApiError(400, "bad_targets", "targets must be a list", "targets")
    out = []
    for i, t in enumerate(raw):
        where = f"targets.{i}"
        if not isinstance(t, dict) or set(t) - {"indicator", "product", "target"}:
            raise ApiError(400, "bad_targets", f"{where} must be {{indicator, product, target}}", where)
        if t.get("indicator") not in INDICATORS[kind]:
            raise ApiError(400, "bad_targets", f"{where}.indicator {t.get('indicator')!r}: a {kind} budget's targets "
                                               f"are {', '.join(INDICATORS[kind])}", f"{where}.indicator")
        product = str(t.get("product") or "")
        if t["indicator"].endswith("_per_product") != bool(product):
            raise ApiError(400, "bad_targets", f"{where}.product: a per-product target names its product, the others "
                                               "none", f"{where}.product")
        value = t.get("target")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(as_float(value)) \
                or value <= 0:
            raise ApiError(400, "bad_targets", f"{where}.target {value!r} must be a positive number", f"{where}.target")
        if any((o["indicator"], o["product"]) == (t["indicator"], product) for o in out):
            raise ApiError(400, "bad_targets", f"{where}: {t['indicator']} {product} has a target already",
                           f"{where}.indicator")
        out.append({"indicator": t["indicator"], "product": product, "target": float(value)})
    return out


def _last_year(svc, entity: str, year: int, kind: str, counting: dict[str, str]) -> list[float]:
    """Last year's counted figure per month (for the ``last_year`` rule); 422 when a month is missing."""
    start = pd.Timestamp(year=year - 1, month=1, day=1, tz=TZ)
    frame = totals_rows(svc.client, svc.park.park.id, "month", start, start + pd.DateOffset(years=1), entity,
                               tracking.totals_fields(kind, counting), "dangliang")
    values = tracking.counted(frame.set_index("time"), kind, counting) if len(frame) else pd.Series(dtype=float)
    by_month = {t.month: float(v) for t, v in values.items()}
    missing = [f"{year - 1}-{m:02d}" for m in range(1, 13) if by_month.get(m, 0.0) <= 0]
    if missing:
        raise ApiError(422, "no_history", f"rule last_year needs {entity}'s {kind} of every month of {year - 1}; "
                                          f"none is accounted for {', '.join(missing)}", "rule")
    return [by_month[m] for m in range(1, 13)]


@bp.get("/budgets")
def budgets():
    entity, svc = _entity(), _svc()
    now = parse_time(request.args["at"], "at") if request.args.get("at") else pd.Timestamp.now(tz=TZ)
    year = _query_year(now.year)
    with svc.sessions() as s:
        plans = budget_store.active_plans(s, year=year, entity=entity)
    return jsonify(_plain({"entity": entity, "year": year, "units": KINDS,
                           "budgets": [budget.standing(svc, p, now) for p in plans]}))


@bp.get("/budgets/history")
def budget_history():
    entity, svc = _entity(), _svc()
    year = _query_year()
    kind = _kind(request.args.get("kind", "energy"))
    with svc.sessions() as s:
        rows = [budget_store.plan_dict(r) for r in budget_store.history(s, entity, year, kind)]
    return jsonify({"entity": entity, "year": year, "kind": kind, "versions": rows})


@bp.post("/budgets")
def create_budget():
    body, svc = _body(), _svc()
    unknown = sorted(set(body) - PLAN_FIELDS)
    if unknown:
        raise ApiError(400, "bad_field", f"unknown field(s) {unknown}; a plan has {', '.join(sorted(PLAN_FIELDS))}",
                       unknown[0])
    entity = check_entity(svc, str(body.get("entity", "park")))
    year, kind = _year(body.get("year")), _kind(body.get("kind"))
    counting, targets = _counting(kind, body.get("counting")), _targets(kind, body.get("targets"))
    rule = body.get("rule", "manual" if "monthly" in body else "equal")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 2000:
        raise ApiError(400, "bad_reason", "reason: state why this budget (the target document, a decision), at most "
                                          "2000 characters", "reason")
    try:
        if not isinstance(rule, str):
            raise PlanError(f"rule {rule!r} is not one of {', '.join(RULES)}", "rule")
        if "monthly" in body and rule != "manual":  # nothing given is dropped unread
            raise PlanError(f"monthly allocations are given with rule manual, not {rule}", "monthly")
        if "weights" in body and rule != "production_plan":
            raise PlanError(f"weights are given with rule production_plan, not {rule}", "weights")
        weights = body.get("monthly") if rule == "manual" else body.get("weights")
        if rule == "last_year":
            weights = _last_year(svc, entity, year, kind, counting)
        monthly = allocate(body.get("annual"), rule, year, weights)
        with svc.sessions() as s:
            row = budget_store.create_plan(s, entity=entity, year=year, kind=kind, annual=float(body["annual"]),
                                           monthly=monthly, rule=rule, weights=weights if rule != "manual" else None,
                                           counting=counting, targets=targets, author=_user(), reason=reason.strip())
    except budget_store.BudgetConflict as exc:
        raise ApiError(409, "budget_exists", str(exc), exc.field) from None
    except PlanError as exc:
        raise ApiError(400, "bad_plan", str(exc), exc.field) from None
    return jsonify(_plain(budget.standing(svc, row, pd.Timestamp.now(tz=TZ)))), 201


@bp.get("/budgets/proposals")
def proposals():
    svc, status = _svc(), request.args.get("status", "pending")
    if status not in (*budget_store.PROPOSAL_STATES, "all"):
        raise ApiError(400, "bad_status", f"status {status!r} is not one of "
                                          f"{', '.join(budget_store.PROPOSAL_STATES)} or all", "status")
    with svc.sessions() as s:
        q = s.query(budget_store.BudgetProposalRow).order_by(budget_store.BudgetProposalRow.id.desc())
        rows = [budget_store.proposal_dict(r) for r in q if status == "all" or r.status == status]
    return jsonify({"status": status, "proposals": rows})


@bp.post("/budgets/proposals")
def propose():
    body, svc = _body(), _svc()
    reason = body.get("reason")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise ApiError(400, "bad_reason", "reason: text of at most 2000 characters", "reason")
    try:
        with svc.sessions() as s:
            row = budget_store.propose(s, year=_year(body.get("year")), kind=_kind(body.get("kind")),
                                       proposal_type=str(body.get("type", "reallocation")),
                                       changes=body.get("changes"), author=_user(), reason=reason)
            return jsonify(budget_store.proposal_dict(row)), 201
    except PlanError as exc:
        raise ApiError(400, "bad_proposal", str(exc), exc.field) from None


@bp.get("/budgets/proposals/<int:proposal_id>")
def proposal(proposal_id: int):
    with _svc().sessions() as s:
        row = s.get(budget_store.BudgetProposalRow, proposal_id) if proposal_id <= budget_store.MAX_ID else None
        if row is None:
            raise ApiError(404, "not_found", f"no budget proposal {proposal_id}")
        return jsonify(budget_store.proposal_dict(row))


@bp.post("/budgets/proposals/<int:proposal_id>/<any(approve, reject):decision>")
def decide(proposal_id: int, decision: str):
    body = request.get_json(silent=True) or {}
    reason = body.get("reason", "") if isinstance(body, dict) else None
    if not isinstance(reason, str) or len(reason) > 2000:
        raise ApiError(400, "bad_reason", "reason: text of at most 2000 characters", "reason")
    try:
        with _svc().sessions() as s:
            row = budget_store.decide(s, proposal_id, decision, _user(), reason)
            return jsonify(budget_store.proposal_dict(row))
    except LookupError:
        raise ApiError(404, "not_found", f"no budget proposal {proposal_id}") from None
    except budget_store.BudgetConflict as exc:
        raise ApiError(409, "proposal_conflict", str(exc), exc.field) from None
    except PlanError as exc:
        raise ApiError(400, "bad_decision", str(exc), exc.field) from None


@bp.get("/warnings")
def warnings():
    entity, svc = _entity(), _svc()
    status = request.args.get("status", "firing")
    if status not in ("firing", "resolved", "all"):
        raise ApiError(400, "bad_status", f"status {status!r} is not firing, resolved or all", "status")
    lang = request.args.get("lang", "zh")
    if lang not in ("zh", "en"):
        raise ApiError(400, "bad_lang", f"lang {lang!r} is not zh or en", "lang")
    with svc.sessions() as s:
        rows = [warning_store.as_dict(r, lang) for r in
                warning_store.listed(s, entity, None if status == "all" else status)]
    return jsonify({"entity": entity, "status": status, "warnings": rows})


@bp.post("/warnings/evaluate")
def evaluate_warnings():
    svc = _svc()
    return jsonify(budget.evaluate(svc))
