"""Energy analysis on the calc API, ``/api/v1/analysis/...`` (docs/analysis.md).

The views read their parameters and answer with :mod:`lingtan_calc.service.analysis`:

``structure``  the share by carrier, enterprise, unit, usage, flow or meter [tce, physical units]
``cost``       cost per carrier and time-of-use band, the demand charge, the average price [CNY]
``compare``    two periods side by side (环比: the previous period of the same length; 同比: a year before)
``trend``      the monthly series over 12 months and its least-squares slope
``pareto``     the units or meters ranked by energy, CO₂ or cost, the top 80 % flagged
``benchmarks`` each product's specific consumption against its 单位产品能源消耗限额 limit
``limits``     the limit library (shipped and the park's own)
"""

from __future__ import annotations

import pandas as pd
from flask import Blueprint, jsonify, request

from lingtan.errors import ApiError
from lingtan_calc.service.analysis import (
    TZ,
    base_range,
    compare_body,
    cost_body,
    pareto_body,
    structure_body,
    trend_body,
)
from lingtan_calc.service.api import _entity, _range, _svc, parse_time
from lingtan_calc.service.benchmarks import benchmarks_body, limits_body

bp = Blueprint("analysis", __name__, url_prefix="/api/v1/analysis")


@bp.get("/structure")
def structure_view():
    entity = _entity()
    start, end = _range()
    return jsonify(structure_body(_svc(), entity, start, end, request.args.get("by", "carrier")))


@bp.get("/cost")
def cost_view():
    entity = _entity()
    start, end = _range()
    return jsonify(cost_body(_svc(), entity, start, end))


def _base(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    if "base_start" in request.args or "base_end" in request.args:
        b0, b1 = parse_time(request.args.get("base_start"), "base_start"), parse_time(request.args.get("base_end"), "base_end")
        if not b0 < b1:
            raise ApiError(400, "bad_range", f"base_start {b0.isoformat()} is not before base_end {b1.isoformat()}", "base_start")
        return b0, b1, "custom"
    base = request.args.get("base", "previous")
    return (*base_range(start, end, base), base)


@bp.get("/compare")
def compare_view():
    entity = _entity()
    start, end = _range()
    return jsonify(compare_body(_svc(), entity, start, end, request.args.get("by", "carrier"), _base(start, end)))


@bp.get("/trend")
def trend_view():
    entity = _entity()
    end = parse_time(request.args.get("end"), "end") if "end" in request.args else pd.Timestamp.now(tz=TZ)
    raw = request.args.get("months", "12")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3):
        raise ApiError(400, "bad_months", f"months {raw!r} is not a whole number from 3 to 120", "months")
    return jsonify(trend_body(_svc(), entity, end, int(raw)))


@bp.get("/pareto")
def pareto_view():
    entity = _entity()
    start, end = _range()
    return jsonify(pareto_body(_svc(), entity, start, end, request.args.get("level", "unit"),
                               request.args.get("metric", "energy")))


@bp.get("/benchmarks")
def benchmarks_view():
    entity = _entity()
    start, end = _range()
    return jsonify(benchmarks_body(_svc(), entity, start, end, request.args.get("product")))


@bp.get("/limits")
def limits_view():
    return jsonify(limits_body(_svc()))
