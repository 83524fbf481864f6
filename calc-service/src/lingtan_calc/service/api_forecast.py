"""Forecasts on the calc API (docs/forecast.md).

``GET  /api/v1/forecast``           the newest hourly forecast of an entity's load or energy, per model,
                                     beside what was counted, and the latest skill scores
``GET  /api/v1/forecast/outturn``   the newest day-end, month-end and year-end outturn of energy and CO₂
``GET  /api/v1/forecast/generation`` the newest PV and wind output forecast per meter
``POST /api/v1/forecast/issue``     the daily pass now (today's forecasts, missed origins, verification), or
                                     ``{"origin": "2026-04-06"}``: the load and energy forecasts from that midnight
``POST /api/v1/forecast/backtest``  a rolling-origin backtest ``{entity, target, days}``
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from flask import Blueprint, jsonify, request

from lingtan.errors import ApiError
from lingtan_calc.adapters import forecast_series as fs
from lingtan_calc.adapters.energy_reads import _frame
from lingtan_calc.service import forecast
from lingtan_calc.service.api import _entity, _range, _svc, parse_time

bp = Blueprint("forecast", __name__, url_prefix="/api/v1/forecast")
TZ = "Asia/Shanghai"
UNITS = {"load": "kW", "energy": "tce/h"}
#: how far back the newest outturn is looked for (a service stopped for months still shows its last one)
OUTTURN_LOOKBACK_D = 400


def _target() -> str:
    target = request.args.get("target", "load")
    if target not in forecast.TARGETS:
        raise ApiError(400, "bad_target", f"target {target!r} is not one of {', '.join(forecast.TARGETS)}", "target")
    return target


def _rows(frame: pd.DataFrame, fields: list[str]) -> list[dict[str, Any]]:
    out = []
    for row in frame.sort_values("time").itertuples(index=False):
        item = {"time": row.time.isoformat()}
        for f in fields:
            v = getattr(row, f)
            item[f] = None if pd.isna(v) else round(float(v), 6)
        out.append(item)
    return out


@bp.get("")
def forecast_view():
    svc, entity, target = _svc(), _entity(), _target()
    start, end = _window()
    measurement = forecast.TARGETS[target][0]
    where = f"\"park\" = '{svc.park.park.id}' AND \"entity\" = '{entity}'"
    latest = fs.latest_forecast(svc.client, measurement, where, start, end)
    models = {m: _rows(g, ["mean", "lower", "upper", "lead_h"]) for m, g in latest.groupby("model")}
    actual = forecast.history(svc, entity, target, min(end, pd.Timestamp.now(tz=TZ).floor("h")),
                              max(1, (end - start).days + 1))
    actual = actual[actual.index >= start].dropna()
    skill = _frame(svc.client, "forecast_skill", ["mae", "rmse", "nrmse", "nmbe", "skill", "n"],
                   ["model", "kind", "window"], where + f" AND \"target\" = '{target}'",
                   pd.Timestamp.now(tz=TZ) - pd.Timedelta(days=3), pd.Timestamp.now(tz=TZ) + pd.Timedelta(days=1),
                   missing=None)
    latest_skill = skill.sort_values("time").groupby(["model", "kind", "window"]).tail(1)
    return jsonify({"entity": entity, "target": target, "unit": UNITS[target], "start": start.isoformat(),
                    "end": end.isoformat(), "models": models,
                    "actual": [{"time": t.isoformat(), "value": round(float(v), 6)} for t, v in actual.items()],
                    "skill": [{"model": r.model, "kind": r.kind, "window": r.window, "at": r.time.isoformat(),
                               **{k: (None if pd.isna(getattr(r, k)) else float(getattr(r, k)))
                                  for k in ("mae", "rmse", "nrmse", "nmbe", "skill", "n")}}
                              for r in latest_skill.itertuples(index=False)]})


def _window() -> tuple[pd.Timestamp, pd.Timestamp]:
    if "start" in request.args or "end" in request.args:
        return _range()
    today = pd.Timestamp.now(tz=TZ).normalize()
    return today - pd.Timedelta(days=1), today + pd.Timedelta(days=2)


@bp.get("/outturn")
def outturn_view():
    svc, entity = _svc(), _entity()
    now = pd.Timestamp.now(tz=TZ)
    where = f"\"park\" = '{svc.park.park.id}' AND \"entity\" = '{entity}'"
    frame = _frame(svc.client, "forecast_outturn", ["actual_to_date", "forecast_rest", "projected", "lower", "upper"],
                   ["quantity", "period"], where, now - pd.Timedelta(days=OUTTURN_LOOKBACK_D), now + pd.Timedelta(days=1),
                   missing=None)
    newest = frame.sort_values("time").groupby(["quantity", "period"]).tail(1)
    return jsonify({"entity": entity, "outturn": [
        {"quantity": r.quantity, "period": r.period, "issued": r.time.isoformat(),
         "unit": "tce" if r.quantity == "energy_tce" else "tCO2",
         **{k: round(float(getattr(r, k)), 6) for k in ("actual_to_date", "forecast_rest", "projected", "lower",
                                                         "upper")}}
        for r in newest.itertuples(index=False)]})


@bp.get("/generation")
def generation_view():
    svc = _svc()
    start, end = _window()
    where = f"\"park\" = '{svc.park.park.id}'"
    names = list(fs.HOURLY_FIELDS["forecast_generation"])
    frame = _frame(svc.client, "forecast_generation", [*names, "lead_h"], ["meter", "role", "model"],
                   where + f" AND \"issued\" = '{fs.LATEST}'", start, end, missing=None)
    frame = frame.rename(columns=dict(zip(names, ("mean", "lower", "upper"), strict=True)))
    meters = [{"meter": m, "role": role, "model": model, "unit": "kW",
               "rows": _rows(g, ["mean", "lower", "upper", "lead_h"])}
              for (m, role, model), g in frame.groupby(["meter", "role", "model"])]
    return jsonify({"start": start.isoformat(), "end": end.isoformat(), "meters": meters})


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the request body must be a JSON object")
    return body


@bp.post("/issue")
def issue_now():
    svc, body = _svc(), _body()
    if not body.get("origin"):  # the daily pass now: today's issue, missed origins, verification
        with svc.lock:
            summary = forecast.daily(svc, pd.Timestamp.now(tz=TZ).normalize())
        return jsonify(summary), 201
    origin = parse_time(body["origin"], "origin")
    if origin != origin.normalize():
        raise ApiError(400, "bad_origin", f"origin {origin.isoformat()} is not a local midnight", "origin")
    if origin > pd.Timestamp.now(tz=TZ):
        raise ApiError(400, "bad_origin", f"origin {origin.isoformat()} is in the future", "origin")
    with svc.lock:
        summary = forecast.issue(svc, origin, extras=False)
    return jsonify(summary), 201


@bp.post("/backtest")
def backtest_now():
    svc, body = _svc(), _body()
    entity = forecast.check_entity(svc, str(body.get("entity", "park")))
    days = body.get("days", 28)
    if not isinstance(days, int) or isinstance(days, bool):
        raise ApiError(400, "bad_days", f"days must be a whole number, got {days!r}", "days")
    return jsonify(forecast.backtest(svc, entity, str(body.get("target", "load")), days))
