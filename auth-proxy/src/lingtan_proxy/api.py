"""The read API for government departments, third parties and the portal: ``/api/v1``.

Energy, carbon and intensity by entity and period (from the calc-service's derived series), real-time
values (from InfluxDB) and the portal overview, as JSON or CSV (``format=csv``). Callers authenticate
with a portal session or ``Authorization: Bearer <API token>``; every answer is limited to the entities
the caller may see (:func:`allowed_entities`), and every token use is audited and rate-limited.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, jsonify, request

from lingtan.errors import ApiError
from lingtan.influxdb import InfluxClient, InfluxError
from lingtan.park.carriers import CARRIER_UNITS, Carrier
from lingtan_proxy.audit import utcnow
from lingtan_proxy.context import client_ip, state
from lingtan_proxy.guards import deny, require
from lingtan_proxy.rbac import PARK, enterprise_scope
from lingtan_proxy.tokens import token_entities, uses_last_minute

bp = Blueprint("api", __name__, url_prefix="/api/v1")
TZ = ZoneInfo("Asia/Shanghai")
PERIODS = ("hour", "day", "month", "year")
# electricity roles that supply the park, in the order the overview lists them
SOURCE_ROLES = ("grid_import", "pv", "wind", "biomass", "chp", "waste_heat", "storage_discharge", "standby_generation")
RENEWABLE_ROLES = ("pv", "wind", "biomass")
ONSITE_ROLES = ("pv", "wind", "biomass", "chp", "waste_heat", "standby_generation")
REALTIME_WINDOW = "10m"  # a value older than this is not "now"


def allowed_entities() -> set[str]:
    """Entities (``park`` and enterprise ids) the caller may read."""
    st = state()
    if g.token is not None:
        return token_entities(g.token, set(st.enterprises))
    return enterprise_scope(g.user, set(st.enterprises))


def _entity(kind: str | None = None) -> str:
    """The ``entity`` parameter, checked against the caller's scope; for API tokens also the data kind and the
    rate limit, and the use (granted or not) is audited."""
    entity = request.args.get("entity", PARK)
    known = set(state().enterprises) | {PARK}
    if entity not in known:
        raise ApiError(404, "unknown_entity", f"entity {entity!r} is not 'park' or an enterprise of the park", "entity")
    tok = g.token
    if tok is None:
        if entity not in allowed_entities():
            deny(f"entity {entity!r} is outside the caller's data scope")
        return entity
    refusal = None
    if kind not in tok.kinds:
        refusal = ApiError(403, "kind_not_granted", f"this token may read {', '.join(tok.kinds)}, not {kind}")
    elif entity not in allowed_entities():
        refusal = ApiError(403, "forbidden", f"entity {entity!r} is outside this token's scope")
    elif uses_last_minute(g.db, tok) >= tok.rate_per_minute:
        refusal = ApiError(429, "rate_limited", f"more than {tok.rate_per_minute} requests in the last minute")
    detail = {"path": request.path, "query": request.query_string.decode()[:300], "owner": tok.owner.username}
    if refusal is None:
        tok.last_used_at = utcnow()
        g.db.commit()
    else:
        detail["reason"] = refusal.message
    state().ctx.audit(g.db, user=tok.owner.username, ip=client_ip(), action="token.use", obj=f"token:{tok.id}",
                      result="success" if refusal is None else "denied", detail=detail)
    if refusal is not None:
        raise refusal
    return entity


def calc_get(path: str, params: dict[str, Any]) -> Any:
    """GET a calc-service read endpoint as the caller; calc-service errors keep their status and code."""
    st = state()
    qs = urlencode(params)
    try:
        up = st.calc.request("GET", f"/api/v1/{path}" + (f"?{qs}" if qs else ""),
                             {"X-Lingtan-User": g.user.username if g.user else "", "Accept": "application/json"})
        raw = up.read()
    except OSError as exc:
        raise ApiError(503, "calc_unavailable", f"calc-service at {st.settings.calc_url}: {exc}") from None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if up.status != 200:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        raise ApiError(up.status if up.status < 500 else 502, err.get("code", "calc_error"),
                       err.get("message", raw[:300].decode("utf-8", "replace")), err.get("field"))
    return body


def _respond(body: dict[str, Any], name: str):
    fmt = request.args.get("format", "json")
    if fmt == "json":
        return jsonify(body)
    if fmt != "csv":
        raise ApiError(400, "bad_format", f"format {fmt!r} is not json or csv", "format")
    rows = body.get("rows", [])
    keys = list(dict.fromkeys(k for r in rows for k in r))
    first = [k for k in ("period_start", "time") if k in keys] or (["period_start"] if not keys else [])
    columns = first + [k for k in keys if k not in first]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _period_params() -> dict[str, str]:
    params = {k: request.args[k] for k in ("period", "start", "end", "by") if k in request.args}
    if params.get("period", "day") not in PERIODS:
        raise ApiError(400, "bad_period", f"period {params['period']!r} is not one of {', '.join(PERIODS)}", "period")
    return params


@bp.get("/entities")
@require("data.read", tokens=True)
def entities():
    allowed = allowed_entities()
    rows = calc_get("entities", {})
    return jsonify([r for r in rows if r["id"] in allowed])


@bp.get("/<any(energy, carbon, intensity):kind>")
@require("data.read", tokens=True)
def accounts(kind: str):
    entity = _entity(kind)
    body = calc_get({"intensity": "intensities"}.get(kind, kind), {"entity": entity, **_period_params()})
    if g.token is None and request.args.get("format") == "csv":
        state().ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="data.export", obj=f"{kind}:{entity}",
                          detail={"query": request.query_string.decode()[:300]})
    return _respond(body, f"{kind}-{entity}")


#: the analyses of the calc-service the read API serves, with the parameters each passes on (docs/analysis.md)
ANALYSES = {"structure": ("start", "end", "by"), "cost": ("start", "end"),
            "compare": ("start", "end", "by", "base", "base_start", "base_end"), "trend": ("end", "months"),
            "pareto": ("start", "end", "level", "metric"), "balance": ("start", "end"),
            "efficiency": ("start", "end", "carrier"), "benchmarks": ("start", "end", "product")}
#: the table of each analysis that ``format=csv`` writes
ANALYSIS_TABLES = {"structure": "rows", "cost": "summary", "compare": "rows", "trend": "rows", "pareto": "rows",
                   "balance": "rows", "efficiency": "conversion", "benchmarks": "rows"}


@bp.get("/analysis/<any(structure, cost, compare, trend, pareto, balance, efficiency, benchmarks):topic>")
@require("data.read", tokens=True)
def analysis(topic: str):
    entity = _entity("analysis")
    params = {k: request.args[k] for k in ANALYSES[topic] if k in request.args}
    body = calc_get(f"analysis/{topic}", {"entity": entity, **params})
    if request.args.get("format", "json") == "csv":
        if g.token is None:
            state().ctx.audit(g.db, user=g.user.username, ip=client_ip(), action="data.export",
                              obj=f"analysis.{topic}:{entity}", detail={"query": request.query_string.decode()[:300]})
        return _respond({"rows": body.get(ANALYSIS_TABLES[topic], [])}, f"{topic}-{entity}")
    return _respond(body, f"{topic}-{entity}")


def _influx() -> InfluxClient:
    return state().influx


def _entity_filter(entity: str) -> str:
    park_id = state().park.park.id
    cond = f"\"park\" = '{park_id}'"
    return cond if entity == PARK else f"{cond} AND \"enterprise\" = '{entity}'"


def realtime_rows(entity: str) -> list[dict[str, Any]]:
    """The newest rate reading of every meter of ``entity`` within the last ten minutes."""
    measurements = ", ".join(f'"{c.value}"' for c in Carrier)
    q = (f'SELECT last("rate") AS "value" FROM {measurements} WHERE {_entity_filter(entity)} '
         f'AND time > now() - {REALTIME_WINDOW} GROUP BY "enterprise", "unit", "meter", "point", "carrier", "role"')
    try:
        series = _influx().series(q, epoch="ms")
    except InfluxError as exc:
        raise ApiError(503, "influxdb_unavailable", str(exc)) from None
    out = []
    for s in series:
        tags = s.get("tags", {})
        for values in s.get("values", []):
            row = dict(zip(s["columns"], values, strict=False))
            carrier = tags.get("carrier") or s.get("name")
            out.append({"enterprise": tags.get("enterprise", ""), "unit": tags.get("unit", ""),
                        "meter": tags.get("meter", ""), "point": tags.get("point", ""), "carrier": carrier,
                        "role": tags.get("role", ""), "value": row["value"],
                        "value_unit": CARRIER_UNITS[Carrier(carrier)].rate,
                        "time": datetime.fromtimestamp(row["time"] / 1000, TZ).isoformat()})
    return out


@bp.get("/realtime")
@require("data.read", tokens=True)
def realtime():
    entity = _entity("realtime")
    return _respond({"entity": entity, "window": REALTIME_WINDOW, "rows": realtime_rows(entity)}, f"realtime-{entity}")


def _today_bounds() -> tuple[datetime, datetime]:
    start = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def electricity_today(entity: str) -> dict[str, float]:
    """Electricity per role since local midnight [kWh], as the calc-service accounted each meter
    (its counter rules, quarantines and corrections: the same answer as every report)."""
    start, end = _today_bounds()
    rows = calc_get("meters", {"entity": entity, "period": "day", "carrier": "electricity",
                               "start": start.isoformat(), "end": end.isoformat()})["rows"]
    by_role: dict[str, float] = {}
    for r in rows:
        by_role[r.get("role", "")] = by_role.get(r.get("role", ""), 0.0) + float(r.get("quantity") or 0.0)
    return by_role


def overview_data(entity: str) -> dict[str, Any]:
    """Power by source now, today's energy [tce], today's CO₂ [tCO2] and today's renewables share."""
    out: dict[str, Any] = {"entity": entity, "time": datetime.now(TZ).isoformat(timespec="seconds"),
                           "power_kw": {}, "energy_tce": None, "co2_t": None, "renewable_share": None,
                           "errors": []}
    try:
        for row in realtime_rows(entity):
            if row["carrier"] == "electricity" and row["role"] in SOURCE_ROLES and row["value"] is not None:
                out["power_kw"][row["role"]] = out["power_kw"].get(row["role"], 0.0) + row["value"]
        kwh = electricity_today(entity)
        used = kwh.get("grid_import", 0.0) + sum(kwh.get(r, 0.0) for r in ONSITE_ROLES) - kwh.get("grid_export", 0.0)
        if used > 0:
            out["renewable_share"] = sum(kwh.get(r, 0.0) for r in RENEWABLE_ROLES) / used
    except (ApiError, InfluxError) as exc:
        out["errors"].append(str(exc))
    start, end = _today_bounds()
    params = {"entity": entity, "period": "day", "start": start.isoformat(), "end": end.isoformat()}
    for key, path, fld in (("energy_tce", "energy", "comprehensive_tce"), ("co2_t", "carbon", "total_tco2")):
        try:
            rows = calc_get(path, params)["rows"]
            out[key] = rows[0].get(fld) if rows else None
        except ApiError as exc:
            out["errors"].append(exc.message)
    return out


@bp.get("/overview")
@require("data.read")
def overview():
    return jsonify(overview_data(_entity()))


@bp.get("/openapi.json")
def openapi():
    from lingtan_proxy.openapi import openapi_spec

    return jsonify(openapi_spec(sorted(state().enterprises)))
