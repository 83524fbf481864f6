"""REST API of meter-level data and meter events, ``/api/v1/meters`` and ``/api/v1/quarantine``.

* ``GET /meters``: each energy point's consumption per period (``acc_point``), as accounted:
  the one answer for per-meter figures (the portal's overview reads it).
* ``GET|POST /meters/replacements``, ``POST /meters/replacements/<id>/withdraw``: meter
  replacements, recorded with author and reason; recording one recalculates the interval it
  falls in.
* ``GET /quarantine``, ``POST /quarantine/<id>/confirm|correct``: intervals whose consumption
  exceeds the meter's capacity, and the decisions on them (docs/accounting.md §1).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from flask import Blueprint, jsonify, request

from lingtan.errors import ApiError
from lingtan.park.carriers import CARRIER_UNITS, Carrier, Kind
from lingtan_calc.adapters.meter_events import (
    CONFIRMED,
    CORRECTED,
    OPEN,
    MeterReplacementRow,
    add_replacement,
    local,
    quarantines,
    replacements,
    withdraw_replacement,
)
from lingtan_calc.adapters.metered import bounding_readings
from lingtan_calc.core.accounting.boundary import PARK_ENTITY
from lingtan_calc.service.api import _entity, _period, _range, _svc, _user, parse_time, utc_text
from lingtan_calc.service.engine import next_start, period_start

bp = Blueprint("meters", __name__, url_prefix="/api/v1")
TZ = "Asia/Shanghai"
STATUSES = (OPEN, CONFIRMED, CORRECTED, "cleared")


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "expected a JSON object")
    return body


def _reason(body: dict[str, Any]) -> str:
    reason = str(body.get("reason") or "").strip()
    if not reason:
        raise ApiError(400, "reason_required", "say why (reason): it is kept with the record", "reason")
    return reason


def _number(body: dict[str, Any], name: str) -> float:
    raw = body.get(name)
    try:
        if isinstance(raw, bool):  # JSON true is not 1 kWh
            raise TypeError(name)
        value = float(raw)
    except (TypeError, ValueError):
        raise ApiError(400, "bad_number", f"{name} {raw!r} is not a number", name) from None
    if not math.isfinite(value) or value < 0:
        raise ApiError(400, "bad_number", f"{name} {raw!r} is not a finite number >= 0", name)
    return value


def _instant(body: dict[str, Any], name: str) -> pd.Timestamp:
    t = parse_time(body.get(name), name)
    if t > pd.Timestamp.now(tz=TZ):
        raise ApiError(400, "bad_time", f"{name} {t.isoformat()} is in the future", name)
    return t


# --------------------------------------------------------------------------- per-meter figures

@bp.get("/meters")
def meters():
    entity, period = _entity(), _period()
    start, end = _range()
    extra = ""
    carrier = request.args.get("carrier")
    if carrier:
        if carrier not in {c.value for c in Carrier}:
            raise ApiError(400, "bad_carrier", f"carrier {carrier!r} is not one of {', '.join(c.value for c in Carrier)}",
                           "carrier")
        extra = f"AND \"carrier\" = '{carrier}' "
    if entity != PARK_ENTITY:
        extra += f"AND \"enterprise\" = '{entity}' "
    svc = _svc()
    db = svc.client.database
    q = (f'SELECT "quantity", "events" FROM "{db}"."accounting"."acc_point" WHERE "park" = \'{svc.park.park.id}\' '
         f"AND \"period\" = '{period}' {extra}AND time >= '{utc_text(start)}' AND time < '{utc_text(end)}' "
         'GROUP BY "enterprise", "unit_id", "meter", "point", "carrier", "role"')
    rows = svc.client.rows(q, epoch="ms")
    for r in rows:
        r["period_start"] = pd.Timestamp(r.pop("time"), unit="ms", tz="UTC").tz_convert(TZ).isoformat()
        r["unit"] = CARRIER_UNITS[Carrier(r["carrier"])].counter
    return jsonify({"entity": entity, "period": period, "start": start.isoformat(), "end": end.isoformat(),
                    "units": {"quantity": "unit column (canonical counter unit of the carrier)"}, "rows": rows})


# --------------------------------------------------------------------------- replacements

@bp.get("/meters/replacements")
def replacement_list():
    with _svc().sessions() as s:
        return jsonify([r.as_dict() for r in replacements(s, request.args.get("point"))])


@bp.post("/meters/replacements")
def replacement_add():
    body = _body()
    svc = _svc()
    point = str(body.get("point") or "")
    ref = svc.calculator.by_id.get(point)
    if ref is None or ref.point.kind is not Kind.counter:
        counters = sorted(p for p, r in svc.calculator.by_id.items() if r.point.kind is Kind.counter)
        raise ApiError(400, "unknown_point", f"point {point!r} is not a counter point of the park "
                       f"(e.g. {', '.join(counters[:3])})", "point")
    time = _instant(body, "time")
    old_final, new_initial = _number(body, "old_final"), _number(body, "new_initial")
    reason = _reason(body)
    unit = CARRIER_UNITS[ref.carrier].counter
    with svc.sessions() as s:
        if any(r.active and local(r.time) == time for r in replacements(s, point)):
            raise ApiError(409, "replacement_exists", f"point {point!r} already has a replacement at "
                           f"{time.isoformat()}; withdraw it first", "time")
        row = add_replacement(s, point=point, meter=ref.meter.id, time=time, old_final=old_final,
                              new_initial=new_initial, unit=unit, author=_user(), reason=reason).as_dict()
    job = _recalc_around(ref, time, f"meter replacement {row['id']} of {point}: {reason}")
    return jsonify({"replacement": row, "recalculation": job.as_dict()}), 201


@bp.post("/meters/replacements/<int:row_id>/withdraw")
def replacement_withdraw(row_id: int):
    body = _body()
    reason = _reason(body)
    svc = _svc()
    with svc.sessions() as s:
        row = s.get(MeterReplacementRow, row_id)
        if row is None:
            raise ApiError(404, "unknown_replacement", f"no meter replacement {row_id}")
        if not row.active:  # the first withdrawal's author and reason stay
            raise ApiError(409, "already_withdrawn", f"meter replacement {row_id} was withdrawn by "
                           f"{row.withdrawn_by}: {row.withdrawn_reason}")
        out = withdraw_replacement(s, row_id, _user(), reason).as_dict()
    ref = svc.calculator.by_id.get(out["point"])
    job = _recalc_around(ref, pd.Timestamp(out["time"]), f"meter replacement {row_id} withdrawn: {reason}") \
        if ref is not None else None  # a point no longer in the park model has nothing to recalculate
    return jsonify({"replacement": out, "recalculation": job.as_dict() if job else None})


def _recalc_around(ref, time: pd.Timestamp, reason: str):
    """Recalculate the hours of the reading interval that ``time`` falls in."""
    svc = _svc()
    before, after = bounding_readings(svc.client, ref, time)
    lo = min(time, before) if before is not None else time - pd.Timedelta(hours=1)
    hi = max(time, after) if after is not None else time + pd.Timedelta(hours=1)
    start = period_start(lo, "hour")
    end = next_start(period_start(hi, "hour"), "hour")
    return svc.submit(start, end, reason, _user())  # the job reloads the replacements


# --------------------------------------------------------------------------- quarantine

@bp.get("/quarantine")
def quarantine_list():
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, "bad_status", f"status {status!r} is not one of {', '.join(STATUSES)}", "status")
    entity = request.args.get("entity", PARK_ENTITY)
    _entity()  # checks it
    with _svc().sessions() as s:
        rows = quarantines(s, status, None if entity == PARK_ENTITY else entity)
        return jsonify({"count": len(rows), "rows": [r.as_dict() for r in rows]})


@bp.post("/quarantine/<int:row_id>/<any(confirm, correct):action>")
def quarantine_decide(row_id: int, action: str):
    body = _body()
    quantity = _number(body, "quantity") if action == "correct" else None
    reason = _reason(body)
    svc = _svc()
    try:
        row, job = svc.decide_quarantine(row_id, CORRECTED if action == "correct" else CONFIRMED, _user(), reason,
                                         quantity)
    except KeyError:
        raise ApiError(404, "unknown_quarantine", f"no quarantined interval {row_id}") from None
    except ValueError as exc:
        raise ApiError(409, "quarantine_cleared", str(exc)) from None
    return jsonify({"quarantine": row, "recalculation": job.as_dict() if job else None})
