"""The energy balance table and efficiencies on the calc API (docs/analysis.md §5, §6).

``/api/v1/analysis/balance``     能源平衡表 of the park or an enterprise: rows per carrier in its
                                 physical unit and tce, the closure, conversion losses, the
                                 check against the accounting's boundary meters and the warnings
``/api/v1/analysis/efficiency``  conversion efficiency per node, and per production unit the
                                 load factor, base load and working/non-working-day ratio
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from lingtan_calc.service.api import _entity, _range, _svc
from lingtan_calc.service.balance import balance_body, efficiency_body

bp = Blueprint("analysis_balance", __name__, url_prefix="/api/v1/analysis")


@bp.get("/balance")
def balance_view():
    entity = _entity()
    start, end = _range()
    return jsonify(balance_body(_svc(), entity, start, end))


@bp.get("/efficiency")
def efficiency_view():
    entity = _entity()
    start, end = _range()
    return jsonify(efficiency_body(_svc(), entity, start, end, request.args.get("carrier", "electricity")))
