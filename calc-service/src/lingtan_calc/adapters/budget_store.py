"""Budget plans, their versions and the four-eyes reallocations (docs/budget.md §1, §3).

A plan is one entity's annual energy (tce) or carbon (tCO₂) budget for one year, with its twelve
monthly allocations, the allocation rule, the dual-control counting and any intensity targets.
Nothing is updated in place: a change is a new **version** of the plan (``supersedes`` the old
row, which stays, ``status`` superseded), so the history of every budget is kept.

The first version of a plan is set by a user with the budget permission. Every later change goes
through a **proposal** (a reallocation between months of a plan, between plans of several
enterprises of the same year and kind, or a revision of a cap) that a second user approves: the
proposer may not approve their own proposal. Approving writes the new versions; a proposal whose
plans have changed since it was made is refused as stale.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lingtan.db import Base
from lingtan_calc.core.budget.plans import KINDS, PlanError, check_cap, check_monthly

PROPOSAL_TYPES = ("reallocation", "revision")
PROPOSAL_STATES = ("pending", "approved", "rejected")
#: the largest row id a database integer holds (SQLite and PostgreSQL BIGINT): a larger one is no row
MAX_ID = 2**63 - 1
#: a reallocation keeps the total of its plans to this [tce or tCO₂]: moving budget adds none
REALLOCATION_TOLERANCE = 1e-6


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BudgetPlanRow(Base):
    __tablename__ = "calc_budget_plan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(100), index=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(10))  # energy | carbon
    version: Mapped[int] = mapped_column(Integer, default=1)
    annual: Mapped[float] = mapped_column(Float)
    monthly: Mapped[list[float]] = mapped_column(JSON)
    rule: Mapped[str] = mapped_column(String(20))
    weights: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    counting: Mapped[dict[str, str]] = mapped_column(JSON)
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)  # active | superseded
    supersedes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    proposal_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    author: Mapped[str] = mapped_column(String(200))
    approved_by: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class BudgetProposalRow(Base):
    __tablename__ = "calc_budget_proposal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(20))
    # [{plan_id, entity, annual_old, annual_new, monthly_old, monthly_new}]
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    entities: Mapped[str] = mapped_column(Text)  # "e01,e02": the plans' entities, for the data scope
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    new_plan_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class BudgetConflict(PlanError):
    """A change the stored state refuses (a plan exists already, a proposal is stale or decided): HTTP 409."""


def active_plan(session: Session, entity: str, year: int, kind: str) -> BudgetPlanRow | None:
    return session.scalars(select(BudgetPlanRow).where(BudgetPlanRow.entity == entity, BudgetPlanRow.year == year,
                                                       BudgetPlanRow.kind == kind,
                                                       BudgetPlanRow.status == "active")).first()


def active_plans(session: Session, year: int | None = None, entity: str | None = None) -> list[BudgetPlanRow]:
    q = select(BudgetPlanRow).where(BudgetPlanRow.status == "active")
    if year is not None:
        q = q.where(BudgetPlanRow.year == year)
    if entity is not None:
        q = q.where(BudgetPlanRow.entity == entity)
    return list(session.scalars(q.order_by(BudgetPlanRow.year, BudgetPlanRow.entity, BudgetPlanRow.kind)))


def history(session: Session, entity: str, year: int, kind: str) -> list[BudgetPlanRow]:
    return list(session.scalars(select(BudgetPlanRow).where(BudgetPlanRow.entity == entity, BudgetPlanRow.year == year,
                                                            BudgetPlanRow.kind == kind).order_by(BudgetPlanRow.version)))


def create_plan(session: Session, *, entity: str, year: int, kind: str, annual: float, monthly: list[float],
                rule: str, weights: list[float] | None, counting: dict[str, str], targets: list[dict[str, Any]],
                author: str, reason: str) -> BudgetPlanRow:
    """Version 1 of a plan; a second plan for the same entity, year and kind is a proposal's job (409)."""
    if active_plan(session, entity, year, kind) is not None:
        raise BudgetConflict(f"entity {entity} has a {year} {kind} budget already: change it with a proposal "
                             f"(POST /api/v1/budgets/proposals), which a second person approves", "entity")
    row = BudgetPlanRow(entity=entity, year=year, kind=kind, version=1, annual=annual, monthly=monthly, rule=rule,
                        weights=weights, counting=counting, targets=targets, status="active", author=author,
                        reason=reason, created_at=_now())
    session.add(row)
    session.commit()
    return row


def _change(session: Session, raw: object, i: int, year: int, kind: str) -> dict[str, Any]:
    where = f"changes[{i}]"
    if not isinstance(raw, dict):
        raise PlanError(f"{where} must be an object with plan_id and monthly", where)
    plan_id = raw.get("plan_id")
    known = isinstance(plan_id, int) and not isinstance(plan_id, bool) and 0 < plan_id <= MAX_ID
    plan = session.get(BudgetPlanRow, plan_id) if known else None
    if plan is None or plan.status != "active":
        raise PlanError(f"{where}.plan_id {raw.get('plan_id')!r} is not an active budget plan", f"{where}.plan_id")
    if (plan.year, plan.kind) != (year, kind):
        raise PlanError(f"{where}: plan {plan.id} is the {plan.year} {plan.kind} budget of {plan.entity}, not "
                        f"{year} {kind}", f"{where}.plan_id")
    annual = check_cap(raw.get("annual", plan.annual), f"{where}.annual")
    monthly = check_monthly(annual, raw.get("monthly"), f"{where}.monthly")
    return {"plan_id": plan.id, "entity": plan.entity, "version": plan.version, "annual_old": plan.annual,
            "annual_new": annual, "monthly_old": plan.monthly, "monthly_new": monthly}


def propose(session: Session, *, year: int, kind: str, proposal_type: str, changes: list[object], author: str,
            reason: str) -> BudgetProposalRow:
    """A pending proposal (validated now; applied only when a second user approves it)."""
    if kind not in KINDS:
        raise PlanError(f"kind {kind!r} is not one of {', '.join(KINDS)}", "kind")
    if proposal_type not in PROPOSAL_TYPES:
        raise PlanError(f"type {proposal_type!r} is not one of {', '.join(PROPOSAL_TYPES)}", "type")
    if not isinstance(changes, list) or not changes:
        raise PlanError("changes must list at least one plan", "changes")
    if not reason.strip():
        raise PlanError("a proposal states its reason", "reason")
    parsed = [_change(session, raw, i, year, kind) for i, raw in enumerate(changes)]
    ids = [c["plan_id"] for c in parsed]
    if len(set(ids)) != len(ids):
        raise PlanError(f"a plan appears more than once in changes: {ids}", "changes")
    if proposal_type == "reallocation":
        # a reallocation moves budget, it does not add any: each plan keeps its cap when it changes
        # alone (between months); between enterprises the caps move but their total stays
        if len(parsed) > 1 and any(c["entity"] == "park" for c in parsed):
            raise PlanError("a reallocation between entities is between enterprises; the park's budget is "
                            "changed by a revision", "changes")
        if len(parsed) == 1 and abs(parsed[0]["annual_new"] - parsed[0]["annual_old"]) > 1e-9:
            raise PlanError(f"changes[0].annual: a reallocation between the months of one plan keeps its cap of "
                            f"{parsed[0]['annual_old']:.6g}; a new cap is a revision", "changes.0.annual")
        before = math.fsum(c["annual_old"] for c in parsed)
        after = math.fsum(c["annual_new"] for c in parsed)
        if abs(after - before) > REALLOCATION_TOLERANCE:
            raise PlanError(f"the reallocation changes the total of its plans from {before:.6g} to {after:.6g}: "
                            "moving budget keeps the total; a new cap is a revision", "changes")
    if all(c["monthly_new"] == c["monthly_old"] and c["annual_new"] == c["annual_old"] for c in parsed):
        raise PlanError("the proposal changes nothing", "changes")
    row = BudgetProposalRow(year=year, kind=kind, type=proposal_type, changes=parsed,
                            entities=",".join(sorted({c["entity"] for c in parsed})), status="pending",
                            author=author, reason=reason.strip(), created_at=_now())
    session.add(row)
    session.commit()
    return row


def decide(session: Session, proposal_id: int, decision: str, user: str, reason: str) -> BudgetProposalRow:
    """Approve (new plan versions) or reject a pending proposal; never by its own author."""
    row = session.get(BudgetProposalRow, proposal_id) if proposal_id <= MAX_ID else None
    if row is None:
        raise LookupError(f"no budget proposal {proposal_id}")
    if decision not in ("approve", "reject"):
        raise PlanError(f"decision {decision!r} is not approve or reject", "decision")
    if row.status != "pending":
        raise BudgetConflict(f"proposal {proposal_id} is {row.status} already ({row.decided_by}, "
                             f"{row.decided_at:%Y-%m-%d %H:%M} UTC)", "decision")
    if user == row.author:
        raise BudgetConflict(f"proposal {proposal_id} was made by {user}: a second person approves or rejects it "
                             "(four-eyes principle)", "decision")
    if decision == "reject" and not reason.strip():
        raise PlanError("a rejection states its reason", "reason")
    if decision == "approve":
        new_ids = []
        for c in row.changes:
            old = session.get(BudgetPlanRow, c["plan_id"])
            if old is None or old.status != "active":
                raise BudgetConflict(f"plan {c['plan_id']} ({c['entity']}) has changed since proposal {proposal_id} "
                                     "was made: the proposal is stale; make a new one", "decision")
            old.status = "superseded"
            new = BudgetPlanRow(entity=old.entity, year=old.year, kind=old.kind, version=old.version + 1,
                                annual=c["annual_new"], monthly=c["monthly_new"], rule="manual", weights=None,
                                counting=old.counting, targets=old.targets, status="active", supersedes=old.id,
                                proposal_id=row.id, author=row.author, approved_by=user, reason=row.reason,
                                created_at=_now())
            session.add(new)
            session.flush()
            new_ids.append(new.id)
        row.new_plan_ids = new_ids
    row.status = "approved" if decision == "approve" else "rejected"
    row.decided_by, row.decided_at, row.decision_reason = user, _now(), reason.strip()
    session.commit()
    return row


def plan_dict(row: BudgetPlanRow) -> dict[str, Any]:
    return {"id": row.id, "entity": row.entity, "year": row.year, "kind": row.kind, "unit": KINDS[row.kind],
            "version": row.version, "annual": row.annual, "monthly": row.monthly, "rule": row.rule,
            "weights": row.weights, "counting": row.counting, "targets": row.targets, "status": row.status,
            "supersedes": row.supersedes, "proposal_id": row.proposal_id, "author": row.author,
            "approved_by": row.approved_by or None, "reason": row.reason, "created_at": row.created_at.isoformat()}


def proposal_dict(row: BudgetProposalRow) -> dict[str, Any]:
    return {"id": row.id, "year": row.year, "kind": row.kind, "type": row.type, "changes": row.changes,
            "entities": row.entities.split(","), "status": row.status, "author": row.author, "reason": row.reason,
            "created_at": row.created_at.isoformat(), "decided_by": row.decided_by or None,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
            "decision_reason": row.decision_reason or None, "new_plan_ids": row.new_plan_ids}
