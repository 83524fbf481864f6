"""Annual budgets and their monthly allocation (standard §5.4 预算管理; docs/budget.md §1).

An annual cap [tce or tCO₂] is split into twelve monthly allocations by a rule:

* ``equal``: one twelfth each;
* ``days``: in proportion to the days of each month (a year's 365 or 366);
* ``last_year``: in proportion to last year's counted figure per month (the entity's own seasonal
  profile);
* ``production_plan``: in proportion to the planned production per month (tonnes, pieces or
  万元 of output, as the plan states);
* ``manual``: twelve figures given by the planner, which must add up to the cap.

The allocations add up to the cap exactly: the rounding remainder goes to December.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Sequence

import numpy as np

RULES = ("equal", "days", "last_year", "production_plan", "manual")
KINDS = {"energy": "tce", "carbon": "tCO2"}
#: allocations may differ from the cap by this much [tce or tCO₂] and still "add up": a planner's
#: spreadsheet rounds each month to 0.001 (three decimals are kgce or kgCO₂)
SUM_TOLERANCE = 0.0005 * 12
#: the largest cap accepted [tce or tCO₂ per year]: ten times the largest Chinese industrial park's
#: yearly energy use is far below it; anything above is a unit mistake (kgce typed as tce)
MAX_CAP = 1e9


class PlanError(ValueError):
    """A budget plan that cannot be accepted; ``field`` names the offending field."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def check_cap(cap: object, field: str = "annual") -> float:
    """The annual cap as a float: finite, positive and below :data:`MAX_CAP`."""
    if isinstance(cap, bool) or not isinstance(cap, (int, float)):
        raise PlanError(f"{field} {cap!r} is not a number", field)
    value = as_float(cap)
    if not math.isfinite(value) or value <= 0:
        raise PlanError(f"{field} {str(cap)[:40]} must be a positive number (a cap of zero or less is not a budget)", field)
    if value > MAX_CAP:
        raise PlanError(f"{field} {cap!r} is above {MAX_CAP:g}: is the unit kgce or kgCO2 instead of t?", field)
    return value


def as_float(value: int | float) -> float:
    """A JSON number as a float; an integer too large for one is infinite (and refused as not finite)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _weights(values: Sequence[object], field: str) -> np.ndarray:
    if not isinstance(values, (list, tuple)) or len(values) != 12:
        raise PlanError(f"{field} must be twelve numbers, January to December", field)
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(as_float(v)):
            raise PlanError(f"{field}[{i}] = {str(v)[:40]} is not a finite number", f"{field}.{i}")
        if float(v) < 0:
            raise PlanError(f"{field}[{i}] = {v!r} is negative", f"{field}.{i}")
        out.append(float(v))
    arr = np.asarray(out)
    if arr.sum() <= 0:
        raise PlanError(f"{field} adds up to zero: nothing to allocate in proportion to", field)
    return arr


def allocate(annual: float, rule: str, year: int, weights: Sequence[float] | None = None) -> list[float]:
    """Twelve monthly allocations of ``annual`` by ``rule`` [same unit as ``annual``].

    Parameters
    ----------
    annual : float
        The annual cap [tce or tCO₂], positive.
    rule : str
        One of :data:`RULES`.
    year : int
        The budget year (for ``days``).
    weights : sequence of 12 floats, optional
        Last year's monthly figures (``last_year``), the planned production (``production_plan``)
        or the allocations themselves (``manual``).
    """
    annual = check_cap(annual)
    if rule not in RULES:
        raise PlanError(f"rule {rule!r} is not one of {', '.join(RULES)}", "rule")
    if rule in ("equal", "days") and weights is not None:
        raise PlanError(f"rule {rule} takes no weights (they are for production_plan)", "weights")
    if rule == "equal":
        shares = np.full(12, 1.0 / 12.0)
    elif rule == "days":
        days = np.array([calendar.monthrange(year, m)[1] for m in range(1, 13)], dtype=float)
        shares = days / days.sum()
    elif rule == "manual":
        monthly = _weights(weights or [], "monthly")
        check_sum(annual, monthly.tolist())
        return exact(annual, monthly.tolist())
    else:
        field = "weights" if rule == "production_plan" else "last_year"
        if weights is None:
            raise PlanError(f"rule {rule} needs twelve monthly {field}", field)
        w = _weights(weights, field)
        shares = w / w.sum()
    return exact(annual, (annual * shares).tolist())


def check_sum(annual: float, monthly: Sequence[float], field: str = "monthly") -> None:
    """Refuse monthly allocations that do not add up to the annual figure (within :data:`SUM_TOLERANCE`)."""
    total = float(np.sum(monthly))
    if abs(total - annual) > SUM_TOLERANCE:
        raise PlanError(f"{field} adds up to {total:.6g}, not the annual {annual:.6g} "
                        f"(difference {total - annual:+.6g}; at most ±{SUM_TOLERANCE:g} is rounding)", field)


def exact(annual: float, monthly: Sequence[float]) -> list[float]:
    """The allocations with December taking the rounding remainder, so that they add up to ``annual``."""
    out = [float(v) for v in monthly]
    out[-1] = annual - math.fsum(out[:-1])
    if out[-1] < 0:
        raise PlanError(f"monthly allocations January to November already add up to more than {annual:g}", "monthly")
    return out


def check_monthly(annual: float, monthly: Sequence[object], field: str = "monthly") -> list[float]:
    """Validated twelve allocations of a stored or proposed plan: numbers ≥ 0 that add up to ``annual``."""
    arr = _weights(monthly, field)
    check_sum(annual, arr.tolist(), field)
    return exact(annual, arr.tolist())
