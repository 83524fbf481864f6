"""REST API of the calc-service, ``/api/v1`` (described by ``/api/v1/openapi.json``).

Reads answer from the derived series in InfluxDB (``accounting`` retention policy); every
value has its unit (``units``), every carbon figure the factors it used. The caller's
identity comes from the auth proxy in ``X-Lingtan-User`` (the proxy strips any client copy).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
from flask import Blueprint, current_app, jsonify, request
from pydantic import ValidationError

from lingtan.errors import ApiError
from lingtan.uploads import uploaded_table
from lingtan_calc.adapters.derived import RP, TOTAL_FIELDS
from lingtan_calc.adapters.store import (
    add_override,
    import_activity,
    import_production,
    override_history,
)
from lingtan_calc.core.accounting.boundary import PARK_ENTITY
from lingtan_calc.core.accounting.factors import Factor
from lingtan_calc.core.accounting.inventory import InventoryError, evaluate, parse_inventory
from lingtan_calc.core.accounting.report import TOTAL_UNITS, accounts_dict, factor_dict
from lingtan_calc.service.openapi import openapi_spec
from lingtan_calc.service.scheduler import affected_range, service_of

bp = Blueprint("api", __name__, url_prefix="/api/v1")
TZ = "Asia/Shanghai"
PERIODS = ("hour", "day", "month", "year")
_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _svc():
    return service_of(current_app)


def _user() -> str:
    return request.headers.get("X-Lingtan-User", "").strip() or "anonymous"


def _entity() -> str:
    entity = request.args.get("entity", PARK_ENTITY)
    svc = _svc()
    known = {e.id for e in svc.park.enterprises} | {PARK_ENTITY}
    if entity not in known:
        raise ApiError(404, "unknown_entity", f"entity {entity!r} is not 'park' or an enterprise of the park "
                       f"({', '.join(sorted(known))})", "entity")
    return entity


def _period() -> str:
    period = request.args.get("period", "day")
    if period not in PERIODS:
        raise ApiError(400, "bad_period", f"period {period!r} is not one of {', '.join(PERIODS)}", "period")
    return period


#: times the platform can have data for: from the first year of the MEE grid factors' era to far ahead
#: (also keeps every time inside the nanosecond range InfluxDB and pandas compute with)
EARLIEST, LATEST = pd.Timestamp("2000-01-01", tz=TZ), pd.Timestamp("2100-01-01", tz=TZ)


def parse_time(raw: object, name: str) -> pd.Timestamp:
    """An ISO 8601 date or time; without a zone it is Asia/Shanghai. 400 naming ``name`` otherwise."""
    try:
        t = pd.Timestamp(str(raw)) if raw not in (None, "") and not isinstance(raw, bool) else pd.NaT
    except (ValueError, OverflowError):
        t = pd.NaT
    if pd.isna(t):  # also the empty string, which pandas reads as NaT
        raise ApiError(400, "bad_time", f"{name} {raw!r} is not a date or ISO 8601 time", name)
    t = t.tz_localize(TZ) if t.tzinfo is None else t.tz_convert(TZ)
    if not EARLIEST <= t < LATEST:
        raise ApiError(400, "bad_time", f"{name} {t.isoformat()} is not between {EARLIEST.date()} and "
                       f"{LATEST.date()}", name)
    return t


def _time(name: str, default: pd.Timestamp) -> pd.Timestamp:
    raw = request.args.get(name)
    return default if raw is None else parse_time(raw, name)


def _range() -> tuple[pd.Timestamp, pd.Timestamp]:
    today = pd.Timestamp.now(tz=TZ).normalize()
    start = _time("start", today - pd.Timedelta(days=7))
    end = _time("end", today + pd.Timedelta(days=1))
    if not start < end:
        raise ApiError(400, "bad_range", f"start {start.isoformat()} is not before end {end.isoformat()}", "start")
    return start, end


def utc_text(t: pd.Timestamp) -> str:
    """An InfluxQL time literal."""
    return t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")



def _query(measurement: str, fields: str, group: list[str], entity: str, period: str,
           start: pd.Timestamp, end: pd.Timestamp, extra: str = "") -> list[dict[str, Any]]:
    svc = _svc()
    db = svc.client.database
    group_by = ", ".join(f'"{g}"' for g in group)
    q = (f'SELECT {fields} FROM "{db}"."{RP}"."{measurement}" WHERE "park" = \'{svc.park.park.id}\' '
         f"AND \"entity\" = '{entity}' AND \"period\" = '{period}' {extra}"
         f"AND time >= '{utc_text(start)}' AND time < '{utc_text(end)}'" + (f" GROUP BY {group_by}" if group else ""))
    rows = svc.client.rows(q, epoch="ms")
    for r in rows:
        r["period_start"] = pd.Timestamp(r.pop("time"), unit="ms", tz="UTC").tz_convert(TZ).isoformat()
    return rows


def envelope(entity: str, period: str, start, end, rows, units: dict[str, str], **extra) -> Any:
    return jsonify({"entity": entity, "period": period, "start": start.isoformat(), "end": end.isoformat(),
                    "units": units, **extra, "rows": rows})


# --------------------------------------------------------------------------- reads

@bp.get("/health")
def health():
    svc = _svc()
    return jsonify({"status": "ok", "park": svc.park.park.id, "last_cycle": svc.last_cycle})


@bp.get("/entities")
def entities():
    park = _svc().park
    out = [{"id": PARK_ENTITY, "name": park.park.name, "type": "park"}]
    for e in park.enterprises:
        out.append({"id": e.id, "name": e.name, "type": "enterprise", "credit_code": e.credit_code,
                    "industry_code": e.industry_code, "units": [{"id": u.id, "name": u.name} for u in e.units]})
    return jsonify(out)


@bp.get("/energy")
def energy():
    entity, period = _entity(), _period()
    start, end = _range()
    by = request.args.get("by", "total")
    if by == "carrier":
        rows = _query("acc_carrier", '"quantity", "tce"', ["carrier", "unit"], entity, period, start, end)
        return envelope(entity, period, start, end, rows, {"quantity": "unit column", "tce": "tce"}, by=by)
    if by != "total":
        raise ApiError(400, "bad_by", f"by {by!r} is not total or carrier", "by")
    renewables = request.args.get("renewables", "include")
    if renewables not in ("include", "exclude"):
        raise ApiError(400, "bad_renewables", f"renewables {renewables!r} is not include or exclude", "renewables")
    names = ("comprehensive_tce", "feedstock_tce", "non_production_tce", "renewable_self_tce")
    rows = _query("acc_totals", ", ".join(f'"{f}"' for f in names), [], entity, period, start, end)
    if renewables == "exclude":  # the stored total includes them (GB/T 2589); the 能耗双控 view leaves them out
        for r in rows:
            r["comprehensive_tce"] = (r.get("comprehensive_tce") or 0.0) - (r.get("renewable_self_tce") or 0.0)
    return envelope(entity, period, start, end, rows, {k: TOTAL_UNITS[k] for k in names}, by=by,
                     renewables=renewables)


@bp.get("/carbon")
def carbon():
    entity, period = _entity(), _period()
    start, end = _range()
    by = request.args.get("by", "total")
    units = {"tco2": "tCO2", "tco2_market": "tCO2"}
    if by in ("source", "meter"):
        tags = ["category", "scope", "carrier", "usage", "meter", "enterprise", "unit_id"]
        rows = _query("acc_emission", '"tco2", "tco2_market", "factors"', tags, entity, period, start, end)
        if by == "source" and rows:
            df = pd.DataFrame(rows)
            df = df[df["usage"] != "non_production"]
            rows = (df.groupby(["period_start", "category", "scope", "carrier"], as_index=False)
                    .agg(tco2=("tco2", "sum"), tco2_market=("tco2_market", "sum"),
                         factors=("factors", lambda v: ",".join(sorted({i for x in v for i in str(x).split(",") if i}))))
                    .to_dict(orient="records"))
        return envelope(entity, period, start, end, rows, units, by=by)
    if by != "total":
        raise ApiError(400, "bad_by", f"by {by!r} is not total, source or meter", "by")
    fields = ", ".join(f'"{f}"' for f in TOTAL_FIELDS if f.endswith("tco2") or f == "green_kwh")  # gross and net too
    rows = _query("acc_totals", fields, [], entity, period, start, end)
    return envelope(entity, period, start, end, rows, {k: v for k, v in TOTAL_UNITS.items() if k in fields}, by=by)


@bp.get("/intensities")
def intensities():
    entity = _entity()
    period = request.args.get("period", "month")
    if period not in PERIODS:
        raise ApiError(400, "bad_period", f"period {period!r} is not one of {', '.join(PERIODS)}", "period")
    start, end = _range()
    rows = _query("acc_intensity", '"value", "numerator", "denominator"', ["indicator", "product", "unit"],
                  entity, period, start, end)
    return envelope(entity, period, start, end, rows, {"value": "unit column"})


@bp.get("/flows")
def flows():
    period = _period()
    start, end = _range()
    svc = _svc()
    db = svc.client.database
    out = {}
    for name, fields, group in (("acc_flow", '"quantity", "tce"', '"source", "target", "carrier", "meter"'),
                                ("acc_node", '"input_tce", "output_tce", "loss_tce"', '"node", "kind"')):
        q = (f'SELECT {fields} FROM "{db}"."{RP}"."{name}" WHERE "park" = \'{svc.park.park.id}\' '
             f"AND \"period\" = '{period}' AND time >= '{utc_text(start)}' AND time < '{utc_text(end)}' GROUP BY {group}")
        rows = svc.client.rows(q, epoch="ms")
        for r in rows:
            r["period_start"] = pd.Timestamp(r.pop("time"), unit="ms", tz="UTC").tz_convert(TZ).isoformat()
        out[name.removeprefix("acc_") + "s"] = rows
    return jsonify({"period": period, "start": start.isoformat(), "end": end.isoformat(),
                    "units": {"tce": "tce", "quantity": "canonical unit of the carrier"}, **out})


# --------------------------------------------------------------------------- factors

@bp.get("/factors")
def factors():
    lib = _svc().library()
    kind, subject = request.args.get("kind"), request.args.get("subject")
    rows = [factor_dict(f) for f in lib if (not kind or f.kind.value == kind) and (not subject or f.subject == subject)]
    return jsonify({"count": len(rows), "factors": rows})


@bp.get("/factors/history")
def factor_history():
    with _svc().sessions() as s:
        return jsonify(override_history(s, request.args.get("factor_id")))


@bp.post("/factors")
def add_factor():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "expected a JSON object: a factor with its source, author and reason")
    body = {**body, "override": True, "author": body.get("author") or _user()}
    try:
        factor = Factor.model_validate(body)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = ".".join(str(p) for p in e["loc"])
        raise ApiError(400, "invalid_factor", f"{field}: {e['msg']} (value {e.get('input')!r:.80})", field) from None
    svc = _svc()
    shipped_ids = {f.id for f in svc.shipped}
    if factor.id in shipped_ids:
        raise ApiError(409, "shipped_factor", f"factor id {factor.id!r} is a shipped factor; give the override "
                       "its own id (it takes precedence for its kind, subject, region and validity)", "id")
    with svc.sessions() as s:
        add_override(s, factor)
    first = _first_computed()
    rng = affected_range(factor.valid_from, factor.valid_to, first)
    job = svc.submit(*rng, f"factor {factor.id} changed: {factor.reason}", factor.author or _user()) if rng else None
    return jsonify({"factor": factor_dict(factor), "recalculation": job.as_dict() if job else None}), 201


def _first_computed() -> pd.Timestamp | None:
    svc = _svc()
    try:
        rows = svc.client.rows(f'SELECT first("comprehensive_tce") FROM "{svc.client.database}"."{RP}"."acc_totals" '
                               f"WHERE \"period\" = 'hour'", epoch="ms")
    except Exception:
        return None
    return pd.Timestamp(rows[0]["time"], unit="ms", tz="UTC").tz_convert(TZ) if rows else None


# --------------------------------------------------------------------------- recalculation

@bp.post("/recalc")
def recalc():
    body = request.get_json(silent=True) or {}
    try:
        start = pd.Timestamp(body["start"])
        end = pd.Timestamp(body["end"])
    except (KeyError, ValueError) as exc:
        raise ApiError(400, "bad_range", f"start and end (ISO 8601) are required: {exc}", "start") from None
    start = start.tz_localize(TZ) if start.tzinfo is None else start
    end = end.tz_localize(TZ) if end.tzinfo is None else end
    reason = str(body.get("reason") or "").strip()
    if not reason:
        raise ApiError(400, "reason_required", "say why the range is recalculated (reason)", "reason")
    scope = body.get("scope") or None
    try:
        job = _svc().submit(start, end, reason, _user(), scope)
    except ValueError as exc:
        raise ApiError(400, "bad_range", str(exc), "start") from None
    return jsonify(job.as_dict()), 202


@bp.get("/recalc")
def recalc_list():
    jobs = sorted(_svc().jobs.values(), key=lambda j: j.created, reverse=True)[:50]
    return jsonify([j.as_dict() for j in jobs])


@bp.get("/recalc/<job_id>")
def recalc_job(job_id: str):
    job = _svc().jobs.get(job_id)
    if job is None:
        raise ApiError(404, "unknown_job", f"no recalculation job {job_id!r}")
    return jsonify(job.as_dict())


# --------------------------------------------------------------------------- offline and production data

@bp.post("/accounting/evaluate")
def accounting_evaluate():
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "bad_json", "expected a JSON inventory (see /api/v1/openapi.json, Inventory)")
    shipped = _svc().shipped
    try:
        inv = parse_inventory(body, "request body")
        acc = evaluate(inv, shipped)
    except InventoryError as exc:  # validation first, then the checks against the shipped library
        raise ApiError(400, "invalid_inventory", str(exc), exc.field) from None
    return jsonify(accounts_dict(acc, shipped.with_overrides(inv.factor_overrides)))


def _enterprise_units() -> dict[str, set[str]]:
    return {e.id: {u.id for u in e.units} for e in _svc().park.enterprises}


@bp.post("/<any(production, process, green):kind>")
def activity_rows(kind: str):
    """Production data, process activities or green-power claims as JSON rows."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        raise ApiError(400, "bad_json", 'expected {"rows": [{enterprise, period_type, period_start, ...}]}', "rows")
    return _import(kind, body["rows"], "api", json.dumps(body, sort_keys=True).encode())


@bp.post("/<any(production, process, green):kind>/import")
def activity_import(kind: str):
    """The same from a CSV or XLSX file (first row the header), all rows or none."""
    rows, filename, payload = uploaded_table()
    return _import(kind, rows, filename, payload)


def _import(kind: str, rows: list[dict], source: str, payload: bytes):
    svc = _svc()
    with svc.sessions() as s:
        if kind == "production":
            batch = import_production(s, rows, _enterprise_units(), source=source, payload=payload, author=_user())
        else:
            materials = {f.subject for f in svc.library() if f.kind.value == "process_emission_factor"}
            batch = import_activity(s, kind, rows, _enterprise_units(), source=source, payload=payload,
                                    author=_user(), materials=materials)
        result = {"batch": batch.id, "kind": kind, "source": source, "accepted": batch.accepted, "rows": batch.rows,
                  "errors": batch.errors}
    if not result["accepted"]:
        return jsonify({**result, **{"error": {"status": 422, "code": "invalid_rows",
                                               "message": f"{len(result['errors'])} error(s); nothing was stored"}}}), 422
    svc.refresh_inputs()
    return jsonify(result), 201


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_spec())
