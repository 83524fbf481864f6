"""The OpenAPI 3.1 description of the calc-service API (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

import json
from typing import Any

from lingtan_calc.core.accounting.factors import Factor
from lingtan_calc.core.accounting.inventory import inventory_schema


def _q(name: str, description: str, *, required: bool = False, enum: list[str] | None = None,
       default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    if default:
        schema["default"] = default
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


_ENTITY = _q("entity", "`park` or an enterprise id", default="park")
_PERIOD = _q("period", "calendar period (Asia/Shanghai)", enum=["hour", "day", "month", "year"], default="day")
_START = _q("start", "first period start, date or ISO 8601 (default: 7 days ago)")
_END = _q("end", "end of the range, exclusive (default: tomorrow)")
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _get(summary: str, params: list[dict], description: str = "") -> dict[str, Any]:
    return {"get": {"summary": summary, "description": description, "parameters": params,
                    "responses": {"200": {"description": "rows with units"}, "400": _ERROR, "404": _ERROR,
                                  "503": _ERROR}}}


def openapi_spec() -> dict[str, Any]:
    inv = inventory_schema()
    defs = inv.pop("$defs", {})
    inv.pop("$schema", None)
    factor = Factor.model_json_schema()
    defs.update(factor.pop("$defs", {}))
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "Lingtan calc-service", "version": "1",
                 "description": "Energy (GB/T 2589-2020) and carbon (GB/T 32150/32151) accounting of the park: "
                                "derived series, factor library, recalculation, offline inventories, production "
                                "data. Every value comes with its unit; every carbon figure with its factors."},
        "paths": {**_series_paths(), **_factor_paths(), **_recalc_paths(), **_input_paths(),
                  **_meter_paths(), **_quarantine_paths(), **_import_paths(), **_analysis_paths(),
                  **_weather_paths(), **_forecast_paths(), **_budget_paths()},
        "components": {"schemas": _component_schemas(defs, inv, factor)},
    }
    # pydantic writes references into "$defs"; OpenAPI keeps them under components/schemas
    return json.loads(json.dumps(spec).replace('"#/$defs/', '"#/components/schemas/'))


def _series_paths() -> dict[str, Any]:
    """Service status, entities and the derived series (energy, carbon, intensities, flows)."""
    return {
        "/api/v1/health": _get("service status and the last scheduled cycle", []),
        "/api/v1/entities": _get("the park and its enterprises with their units", []),
        "/api/v1/energy": _get("comprehensive energy consumption (综合能耗) in tce, or by carrier",
                               [_ENTITY, _PERIOD, _START, _END, _q("by", "total or carrier", enum=["total", "carrier"])]),
        "/api/v1/carbon": _get("CO2 by scope (location- and market-based), by source or by meter",
                               [_ENTITY, _PERIOD, _START, _END,
                                _q("by", "total, source or meter", enum=["total", "source", "meter"])]),
        "/api/v1/intensities": _get("单位产品/产值/增加值 energy and carbon intensities",
                                    [_ENTITY, _q("period", "period", enum=["day", "month", "year"], default="month"),
                                     _START, _END]),
        "/api/v1/flows": _get("energy flow per topology edge and conversion-node losses", [_PERIOD, _START, _END]),
    }


def _analysis_paths() -> dict[str, Any]:
    """Energy analysis (docs/analysis.md): structure, cost, comparison, trend, key consumers."""
    by = _q("by", "breakdown", enum=["carrier", "enterprise", "unit", "usage", "flow", "meter"], default="carrier")
    level = _q("level", "consumers ranked", enum=["unit", "meter"], default="unit")
    metric = _q("metric", "ranked by", enum=["energy", "co2", "cost"], default="energy")
    base = _q("base", "the period compared with: previous (环比) or last_year (同比)", enum=["previous", "last_year"],
              default="previous")
    return {
        "/api/v1/analysis/structure": _get("用能结构: the share by carrier, enterprise, unit, usage, flow or meter",
                                           [_ENTITY, _START, _END, by]),
        "/api/v1/analysis/cost": _get("能源成本: cost per carrier and time-of-use band, demand charge, average price",
                                      [_ENTITY, _START, _END]),
        "/api/v1/analysis/compare": _get("同比/环比: two periods side by side with absolute and relative change",
                                         [_ENTITY, _START, _END, by, base, _q("base_start", "custom base period start"),
                                          _q("base_end", "custom base period end")]),
        "/api/v1/analysis/trend": _get("the monthly energy [tce] over the last months and its slope",
                                       [_ENTITY, _q("end", "first month after the series (default: this month)"),
                                        _q("months", "3 to 120", default="12")]),
        "/api/v1/analysis/balance": _get("能源平衡表: rows per carrier, closure, conversion losses, boundary check",
                                         [_ENTITY, _START, _END]),
        "/api/v1/analysis/efficiency": _get("conversion efficiency per node; load factor and base load per unit",
                                            [_ENTITY, _START, _END, _q("carrier", "carrier of the load figures",
                                                                       default="electricity")]),
        "/api/v1/analysis/pareto": _get("重点能耗环节: units or meters ranked, the top 80 % flagged",
                                        [_ENTITY, _START, _END, level, metric]),
        "/api/v1/analysis/benchmarks": _get("单位产品能源消耗限额: each product's specific consumption [kgce/t] "
                                            "against its national limit, the grade reached, the energy above it",
                                            [_ENTITY, _START, _END, _q("product", "one product; no limit: 400")]),
        "/api/v1/analysis/limits": _get("the limit library: the shipped national limits and the park's own", []),
        **_recommendation_paths(),
    }


def _recommendation_paths() -> dict[str, Any]:
    """Recommendations (docs/analysis.md §7)."""
    return {
        "/api/v1/recommendations": _get("节能建议: stored recommendations with evidence and estimated annual saving",
                                        [_ENTITY, _q("status", "comma-separated: open, acknowledged, dismissed, resolved",
                                                     default="open,acknowledged")]),
        "/api/v1/recommendations/{id}": _get("one stored recommendation", [_ID]),
        "/api/v1/recommendations/{id}/{decision}": {"post": {
            "summary": "acknowledge or dismiss a recommendation (dismiss needs a reason); recorded with its author",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                           {"name": "decision", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": ["acknowledge", "dismiss"]}}],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                "reason": {"type": "string", "maxLength": 2000}}}}}},
            "responses": {"200": {"description": "the recommendation"}, "400": _ERROR, "404": _ERROR, "409": _ERROR}}},
        "/api/v1/recommendations/evaluate": {"post": {
            "summary": "evaluate every entity's recommendations now (the scheduler does it daily)",
            "responses": {"200": {"description": "counts opened, updated, resolved per entity"}}}},
        "/api/v1/reports": {
            **_get("日报/月报/年报: the current reports of an entity (all=1 with superseded ones)",
                   [_ENTITY, _q("kind", "day, month or year", enum=["day", "month", "year"]), _q("all", "1: all files")]),
            "post": {"summary": "generate a report now (XLSX and/or PDF), archived with its SHA-256",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["kind", "start"], "properties": {
                             "entity": {"type": "string"}, "kind": {"type": "string", "enum": ["day", "month", "year"]},
                             "start": {"type": "string"}, "lang": {"type": "string", "enum": ["zh", "en"]},
                             "formats": {"type": "array", "items": {"type": "string", "enum": ["xlsx", "pdf"]}}}}}}},
                     "responses": {"201": {"description": "the archived files"}, "400": _ERROR, "404": _ERROR}}},
        "/api/v1/reports/deliveries": _get("the e-mail outbox: each scheduled report's delivery through the notifier",
                                           [_ENTITY, _q("status", "pending, sent or failed",
                                                        enum=["pending", "sent", "failed"])]),
        "/api/v1/reports/{id}": _get("one archived report file's record (entity, kind, period, SHA-256)", [_ID]),
        "/api/v1/reports/{id}/file": {"get": {
            "summary": "the archived file, checked against its SHA-256 (header X-Content-SHA256)",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "the file"}, "404": _ERROR, "409": _ERROR, "410": _ERROR}}},
    }


def _factor_paths() -> dict[str, Any]:
    """The factor library and its override history."""
    return {
        "/api/v1/factors": {
            **_get("the factor library with provenance (shipped and park overrides)",
                   [_q("kind", "factor kind"), _q("subject", "carrier, fuel, gas or material")]),
            "post": {"summary": "add a park override (recorded with author and reason); recalculates the "
                                "periods it applies to",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/Factor"}}}},
                     "responses": {"201": {"description": "stored; the recalculation job"}, "400": _ERROR,
                                   "409": _ERROR}}},
        "/api/v1/factors/history": _get("every override ever recorded, with author, time and reason",
                                        [_q("factor_id", "only this factor id")]),
    }


def _recalc_paths() -> dict[str, Any]:
    """Recalculation jobs."""
    return {
        "/api/v1/recalc": {
            **_get("recent recalculation jobs", []),
            "post": {"summary": "recalculate a range (hours, then the days, months and years they touch)",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["start", "end", "reason"],
                         "properties": {"start": {"type": "string"}, "end": {"type": "string"},
                                        "reason": {"type": "string"},
                                        "scope": {"type": "string", "description":
                                                  "an enterprise id or park: only its series are "
                                                  "rewritten (the park is always computed together)"}}}}}},
                     "responses": {"202": {"description": "the job"}, "400": _ERROR}}},
        "/api/v1/recalc/{job_id}": {"get": {"summary": "one job with its runs and what changed",
                                            "parameters": [{"name": "job_id", "in": "path", "required": True,
                                                            "schema": {"type": "string"}}],
                                            "responses": {"200": {"description": "the job"}, "404": _ERROR}}},
    }


def _input_paths() -> dict[str, Any]:
    """Offline inventories and the production, process and green-power data entered per period."""
    return {
        "/api/v1/accounting/evaluate": {"post": {
            "summary": "account an offline inventory (same results as the metered path, with every factor)",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Inventory"}}}},
            "responses": {"200": {"description": "totals, carriers, sources, intensities, factors"},
                          "400": _ERROR, "422": _ERROR}}},
        "/api/v1/production": {"post": {
            "summary": "record production data (output, output value, value added) per enterprise and period",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"rows": {"type": "array", "items": {
                    "$ref": "#/components/schemas/ProductionRow"}}}}}}},
            "responses": {"201": {"description": "accepted batch"}, "422": _ERROR}}},
        "/api/v1/process": {"post": {
            "summary": "record process activities (material in t, calcination fraction) per enterprise and period",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"rows": {"type": "array", "items": {
                    "$ref": "#/components/schemas/ProcessRow"}}}}}}},
            "responses": {"201": {"description": "accepted batch"}, "422": _ERROR}}},
        "/api/v1/green": {"post": {
            "summary": "record green-power contracts and GECs claimed per enterprise and period (market-based)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"rows": {"type": "array", "items": {
                    "$ref": "#/components/schemas/GreenRow"}}}}}}},
            "responses": {"201": {"description": "accepted batch"}, "422": _ERROR}}},
    }


def _meter_paths() -> dict[str, Any]:
    """Per-point consumption and meter replacements."""
    return {
        "/api/v1/meters": _get("each energy point's consumption per period, as accounted (acc_point)",
                               [_ENTITY, _PERIOD, _START, _END, _q("carrier", "only this carrier")]),
        "/api/v1/meters/replacements": {
            **_get("meter replacements, with author and reason (withdrawn ones too)",
                   [_q("point", "only this point")]),
            "post": {"summary": "record a meter replacement: the old register's final and the new one's "
                                "first reading [canonical unit of the carrier]; recalculates its interval",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["point", "time", "old_final", "new_initial", "reason"],
                         "properties": {"point": {"type": "string", "description": "a counter point id"},
                                        "time": {"type": "string", "description": "ISO 8601; no zone = "
                                                 "Asia/Shanghai; not in the future"},
                                        "old_final": {"type": "number", "minimum": 0},
                                        "new_initial": {"type": "number", "minimum": 0},
                                        "reason": {"type": "string", "minLength": 1}}}}}},
                     "responses": {"201": {"description": "stored; the recalculation job"}, "400": _ERROR}}},
        "/api/v1/meters/replacements/{id}/withdraw": {"post": {
            "summary": "withdraw a replacement recorded in error (kept, marked withdrawn); recalculates",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}}}},
            "responses": {"200": {"description": "withdrawn; the recalculation job"}, "400": _ERROR,
                          "404": _ERROR}}},
    }


def _quarantine_paths() -> dict[str, Any]:
    """Quarantined intervals and their decisions."""
    return {
        "/api/v1/quarantine": _get("intervals whose consumption exceeds the meter's capacity, and their "
                                   "decisions", [_ENTITY, _q("status", "open, confirmed, corrected or cleared",
                                                             enum=["open", "confirmed", "corrected", "cleared"])]),
        "/api/v1/quarantine/{id}/{action}": {"post": {
            "summary": "confirm (the measured value counts) or correct (quantity counts instead) a quarantined "
                       "interval; recalculates its hours, days, months and years",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                           {"name": "action", "in": "path", "required": True,
                            "schema": {"enum": ["confirm", "correct"]}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["reason"], "properties": {
                    "reason": {"type": "string"},
                    "quantity": {"type": "number", "minimum": 0,
                                 "description": "correct only: the interval's consumption [canonical unit]"}}}}}},
            "responses": {"200": {"description": "decided; the recalculation job"}, "400": _ERROR,
                          "404": _ERROR}}},
    }


def _import_paths() -> dict[str, Any]:
    """File import of production data (and, in the same form, process and green data)."""
    return {
        "/api/v1/production/import": {"post": {
            "summary": "import production data from a CSV or XLSX file (all rows or none); "
                       "/api/v1/process/import and /api/v1/green/import take the same form",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}},
            "responses": {"201": {"description": "accepted batch"}, "422": _ERROR}}},
    }


def _weather_paths() -> dict[str, Any]:
    """Weather observations of the park's stations (docs/analysis.md §3, "Weather")."""
    rows = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"rows": {"type": "array", "items": {"$ref": "#/components/schemas/WeatherRow"}}}}}}}
    return {
        "/api/v1/weather": {
            **_get("a station's daily mean temperature and heating/cooling degree days (HDD, CDD) over the range",
                   [_q("station", "station id (default: the park model's reference station)"), _START, _END]),
            "post": {"summary": "record hourly weather observations (all rows or none)", "requestBody": rows,
                     "responses": {"201": {"description": "accepted batch"}, "404": _ERROR, "422": _ERROR}}},
        "/api/v1/weather/import": {"post": {
            "summary": "import weather observations from a CSV or XLSX file (all rows or none)",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}},
            "responses": {"201": {"description": "accepted batch"}, "404": _ERROR, "422": _ERROR}}},
    }


def _forecast_paths() -> dict[str, Any]:
    """Forecasts, their verification and backtests (docs/forecast.md)."""
    target = _q("target", "what is forecast", enum=["load", "energy"], default="load")
    window = "default: yesterday to the end of tomorrow"
    body = {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "entity": {"type": "string"}, "target": {"enum": ["load", "energy"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 120}}}}}}
    created = {"201": {"description": "what was issued and what was left out, with the reason"}, "400": _ERROR}
    return {
        "/api/v1/forecast": _get("the newest hourly forecast per model (mean and 80 % interval) beside what was "
                                 "counted, and the latest skill scores", [_ENTITY, target, _START, _END]),
        "/api/v1/forecast/outturn": _get("the newest month-end and year-end outturn of energy [tce] and CO₂ [t] "
                                         "with its 80 % interval", [_ENTITY]),
        "/api/v1/forecast/generation": _get(f"the newest PV and wind output forecast per meter [kW] ({window})",
                                            [_START, _END]),
        "/api/v1/forecast/issue": {"post": {
            "summary": "run the daily forecast pass now, or issue the load and energy forecasts from one past "
                       "local midnight (`origin`)",
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                "origin": {"type": "string", "description": "a local midnight, date or ISO 8601"}}}}}},
            "responses": created}},
        "/api/v1/forecast/backtest": {"post": {
            "summary": "rolling-origin backtest of the day-ahead forecast (MAE, RMSE, NRMSE, NMBE, skill over "
                       "previous-week persistence)", "requestBody": body,
            "responses": {"200": {"description": "scores"}, "400": _ERROR, "404": _ERROR, "422": _ERROR}}},
    }


def _component_schemas(defs: dict[str, Any], inv: dict[str, Any], factor: dict[str, Any]) -> dict[str, Any]:
    """The pydantic definitions, the inventory and factor schemas, the data rows and the error body."""
    return {
        **defs,
        "Inventory": inv,
        "Factor": factor,
        "ProductionRow": {"type": "object", "required": ["enterprise", "period_start"], "properties": {
            "enterprise": {"type": "string"}, "period_type": {"enum": ["day", "month", "year"]},
            "period_start": {"type": "string", "format": "date"}, "product": {"type": "string"},
            "quantity": {"type": "number", "minimum": 0}, "product_unit": {"type": "string"},
            "production_unit": {"type": "string"},
            "output_value": {"type": "number", "minimum": 0, "description": "总产值 [万元]"},
            "value_added": {"type": "number", "minimum": 0, "description": "增加值 [万元]"}}},
        "ProcessRow": {"type": "object", "required": ["enterprise", "period_start", "material", "quantity"],
                       "properties": {"enterprise": {"type": "string"}, "period_type": {"enum": ["day", "month", "year"]},
                                      "period_start": {"type": "string", "format": "date"},
                                      "material": {"type": "string", "description": "e.g. CaCO3"},
                                      "quantity": {"type": "number", "minimum": 0, "description": "[t]"},
                                      "fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                                      "production_unit": {"type": "string"}}},
        "GreenRow": {"type": "object", "required": ["enterprise", "period_start", "instrument", "reference"],
                     "properties": {"enterprise": {"type": "string"}, "period_type": {"enum": ["day", "month", "year"]},
                                    "period_start": {"type": "string", "format": "date"},
                                    "instrument": {"enum": ["green_power_contract", "gec"]},
                                    "reference": {"type": "string"}, "kwh": {"type": "number", "minimum": 0},
                                    "certificates": {"type": "number", "minimum": 0,
                                                     "description": "GECs, 1 000 kWh each"}}},
        "WeatherRow": {"type": "object", "required": ["station", "time"], "properties": {
            "station": {"type": "string"},
            "time": {"type": "string", "format": "date-time", "description": "without an offset: Asia/Shanghai"},
            "air_temperature": {"type": "number", "minimum": -60, "maximum": 60, "description": "[°C]"},
            "ghi": {"type": "number", "minimum": 0, "maximum": 1500,
                    "description": "global horizontal irradiance [W/m²]"}}},
        "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"},
            "field": {"type": "string"},
            "id": {"type": "string", "description": "internal errors only: the id under which the "
                                                    "service log holds the details"}}}}},
    }


def _post(summary: str, properties: dict[str, Any], required: list[str], ok: str = "201",
          params: list[dict] | None = None) -> dict[str, Any]:
    return {"post": {"summary": summary, "parameters": params or [], "requestBody": {"content": {"application/json": {"schema": {
        "type": "object", "properties": properties, "required": required}}}},
        "responses": {ok: {"description": "the stored row"}, "400": _ERROR, "404": _ERROR, "409": _ERROR,
                      "422": _ERROR}}}


def _budget_paths() -> dict[str, Any]:
    """Budgets, their four-eyes changes and the warnings (docs/budget.md)."""
    year = _q("year", "budget year (default: this year)")
    kind = {"enum": ["energy", "carbon"]}
    twelve = {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 12, "maxItems": 12}
    change = {"type": "object", "properties": {"plan_id": {"type": "integer"}, "annual": {"type": "number"},
                                               "monthly": twelve}, "required": ["plan_id", "monthly"]}
    reason = {"reason": {"type": "string", "maxLength": 2000}}
    return {
        "/api/v1/budgets": {
            **_get("the entity's budgets of a year: plan, actual to date, projected outturn with its 80 % interval, "
                   "remaining per day, months, the re-spread of the rest of the year, intensity targets",
                   [_ENTITY, year, _q("at", "the standing at this time (default: now)")]),
            **_post("a new annual budget (version 1), allocated to months by its rule", {
                "entity": {"type": "string"}, "year": {"type": "integer"}, "kind": kind,
                "annual": {"type": "number", "exclusiveMinimum": 0},
                "rule": {"enum": ["equal", "days", "last_year", "production_plan", "manual"]},
                "weights": twelve, "monthly": twelve,
                "counting": {"type": "object", "description": "renewables/feedstock: include|exclude (energy); "
                                                              "scope2: location|market (carbon)"},
                "targets": {"type": "array", "items": {"type": "object", "properties": {
                    "indicator": {"type": "string"}, "product": {"type": "string"}, "target": {"type": "number"}}}},
                **reason}, ["year", "kind", "annual", "reason"])},
        "/api/v1/budgets/history": _get("every version of one plan", [_ENTITY, _q("year", "budget year", required=True),
                                                                      _q("kind", "energy or carbon", enum=["energy", "carbon"],
                                                                         default="energy")]),
        "/api/v1/budgets/proposals": {
            **_get("budget change proposals", [_q("status", "pending, approved, rejected or all", default="pending",
                                                  enum=["pending", "approved", "rejected", "all"])]),
            **_post("propose a reallocation (between months, or between enterprises keeping their total) or a "
                    "revision of caps; applied when a second person approves it", {
                        "year": {"type": "integer"}, "kind": kind, "type": {"enum": ["reallocation", "revision"]},
                        "changes": {"type": "array", "items": change, "minItems": 1}, **reason},
                    ["year", "kind", "changes", "reason"])},
        "/api/v1/budgets/proposals/{id}": _get("one proposal with its changes and decision", [_ID]),
        "/api/v1/budgets/proposals/{id}/approve": _post("approve a proposal (not its author): new plan versions",
                                                        reason, [], "200", [_ID]),
        "/api/v1/budgets/proposals/{id}/reject": _post("reject a proposal, with the reason", reason, ["reason"], "200",
                                                       [_ID]),
        "/api/v1/warnings": _get("the entity's warnings: budget used 80/90/100 %, projected above the cap, intensity "
                                 "above target, a day's CO₂ far above its forecast",
                                 [_ENTITY, _q("status", "firing, resolved or all", default="firing",
                                              enum=["firing", "resolved", "all"]),
                                  _q("lang", "zh or en", default="zh", enum=["zh", "en"])]),
        "/api/v1/warnings/evaluate": _post("evaluate the budgets and warnings now (the daily pass does it at 00:15)",
                                           {}, [], "200"),
    }
