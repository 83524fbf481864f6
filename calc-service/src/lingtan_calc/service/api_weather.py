"""Weather observations on the calc API (docs/analysis.md §3, "Weather").

``POST /api/v1/weather``         observations as JSON rows ``{"rows": [{station, time, air_temperature, ghi}]}``
``POST /api/v1/weather/import``  the same from a CSV or XLSX file (first row the header)
``GET  /api/v1/weather``         a station's daily mean temperature and degree days over a range

Imports are all or nothing: one bad row refuses the whole batch (422, every error listed) and
the refusal is recorded like an accepted batch.
"""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request

from lingtan.errors import ApiError
from lingtan.uploads import uploaded_table
from lingtan_calc.adapters.weather_store import import_weather
from lingtan_calc.service.api import _range, _svc, _user
from lingtan_calc.service.weather import station_of, stations, weather_body

bp = Blueprint("weather", __name__, url_prefix="/api/v1/weather")


@bp.get("")
def weather_view():
    start, end = _range()
    return jsonify(weather_body(_svc(), request.args.get("station"), start, end))


@bp.post("")
def weather_rows():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        raise ApiError(400, "bad_json", 'expected {"rows": [{station, time, air_temperature, ghi}]}', "rows")
    return _import(body["rows"], "api", json.dumps(body, sort_keys=True).encode())


@bp.post("/import")
def weather_import():
    rows, filename, payload = uploaded_table()
    return _import(rows, filename, payload)


def _import(rows: list, source: str, payload: bytes):
    svc = _svc()
    station_of(svc, None)  # 404 when the park model names no station
    with svc.sessions() as s:
        batch = import_weather(s, rows, set(stations(svc)), source=source, payload=payload, author=_user())
        result = {"batch": batch.id, "kind": "weather", "source": source, "accepted": batch.accepted,
                  "rows": batch.rows, "errors": batch.errors}
    if not result["accepted"]:
        return jsonify({**result, "error": {"status": 422, "code": "invalid_rows",
                                            "message": f"{len(result['errors'])} error(s); nothing was stored"}}), 422
    return jsonify(result), 201
