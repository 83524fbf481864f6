"""OpenAPI 3.0 description of the proxy's read API (``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

VERSION = "1.0.0"


def _error() -> dict[str, Any]:
    return {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["status", "code", "message"],
        "properties": {"status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"},
                       "field": {"type": "string"},
                       "id": {"type": "string", "description": "internal errors only: the log's reference"}}}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Invalid parameter", 401: "Not logged in and no valid API token", 403: "Outside the caller's scope",
            404: "Unknown entity, or no data for the period", 422: "The calculation cannot be made (e.g. no tariff for the period)", 429: "Token rate limit reached", 502: "The calc-service failed",
            503: "A data service is unavailable"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for c in codes}


def _param(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def openapi_spec(enterprises: list[str]) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": _info(),
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "paths": _paths(enterprises),
        "components": _components(),
    }


def _info() -> dict[str, Any]:
    return {"title": "Lingtan read API", "version": VERSION,
            "description": "Energy, carbon and intensity of the park and its enterprises, and real-time "
                           "values. Authenticate with 'Authorization: Bearer <API token>' (created in the "
                           "portal) or a portal session. Every answer is limited to the caller's scope; "
                           "every token use is audited."}


def _query_params(enterprises: list[str]) -> dict[str, dict[str, Any]]:
    """The query parameters of the data paths, by name (entity, period, start, end, format)."""
    entity = _param("entity", {"type": "string", "enum": ["park", *enterprises], "default": "park"},
                    "'park' or an enterprise id; must lie within the caller's scope")
    period = _param("period", {"type": "string", "enum": ["hour", "day", "month", "year"]},
                    "calendar period (Asia/Shanghai); default day (month for intensity)")
    start = _param("start", {"type": "string"}, "first period, a date or ISO 8601 time (default: 7 days ago)")
    end = _param("end", {"type": "string"}, "end, exclusive (default: tomorrow)")
    fmt = _param("format", {"type": "string", "enum": ["json", "csv"], "default": "json"}, "answer format")
    return {"entity": entity, "period": period, "start": start, "end": end, "format": fmt}


def _accounts(q: dict[str, dict[str, Any]], kind: str, by: list[str], summary: str) -> dict[str, Any]:
    """A data path answering a table of accounted series (JSON or CSV), optionally broken down ``by``."""
    table = {"200": {"description": "Rows with their units", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Table"}},
        "text/csv": {"schema": {"type": "string"}}}}}
    common = _errors(400, 401, 403, 404, 429, 502, 503)
    params = [q["entity"], q["period"], q["start"], q["end"], q["format"]]
    if by:
        params.append(_param("by", {"type": "string", "enum": by, "default": by[0]}, "breakdown"))
    return {"get": {"summary": summary, "tags": ["data"], "parameters": params, "responses": {**table, **common},
                    "x-data-kind": kind}}


def _paths(enterprises: list[str]) -> dict[str, Any]:
    q = _query_params(enterprises)
    return {
        "/api/v1/entities": {"get": {"summary": "The park and the enterprises the caller may read", "tags": ["data"],
                                     "responses": {"200": {"description": "Entities", "content": {
                                         "application/json": {"schema": {"type": "array", "items": {
                                             "$ref": "#/components/schemas/Entity"}}}}}, **_errors(401, 502, 503)}}},
        "/api/v1/energy": _accounts(q, "energy", ["total", "carrier"],
                                    "Comprehensive energy consumption [tce] (GB/T 2589), or by carrier"),
        "/api/v1/carbon": _accounts(q, "carbon", ["total", "source", "meter"],
                                    "CO₂ emissions [tCO2], scope 1 and 2, location- and market-based"),
        "/api/v1/intensity": _accounts(q, "intensity", [], "Intensity indicators (per output, per value added)"),
        **_analysis_paths(q),
        "/api/v1/realtime": {"get": {
            "summary": "The newest reading of every meter of the entity (last 10 minutes)", "tags": ["data"],
            "parameters": [q["entity"], q["format"]], "x-data-kind": "realtime",
            "responses": {"200": {"description": "Readings", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Realtime"}},
                "text/csv": {"schema": {"type": "string"}}}}, **_errors(400, 401, 403, 404, 429, 503)}}},
    }


def _analysis_paths(q: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The energy analyses (docs/analysis.md), data kind ``analysis``."""
    by = _param("by", {"type": "string", "enum": ["carrier", "enterprise", "unit", "usage", "flow", "meter"],
                       "default": "carrier"}, "breakdown")
    base = _param("base", {"type": "string", "enum": ["previous", "last_year"], "default": "previous"},
                  "compared with the previous period (环比) or a year before (同比)")
    months = _param("months", {"type": "string", "default": "12"}, "months in the trend, 3 to 120")
    level = _param("level", {"type": "string", "enum": ["unit", "meter"], "default": "unit"}, "consumers ranked")
    metric = _param("metric", {"type": "string", "enum": ["energy", "co2", "cost"], "default": "energy"}, "ranked by")
    base_start = _param("base_start", {"type": "string"}, "a custom base period: its start")
    base_end = _param("base_end", {"type": "string"}, "a custom base period: its end")
    carrier = _param("carrier", {"type": "string", "default": "electricity"}, "the carrier of the load figures")
    product = _param("product", {"type": "string"}, "one product (a name of its limit); unknown: 400")
    topics = {"structure": ("用能结构: the share by carrier, enterprise, unit, usage, flow or meter", [q["start"], q["end"], by]),
              "cost": ("能源成本: cost per carrier and time-of-use band, demand charge [CNY]", [q["start"], q["end"]]),
              "compare": ("同比/环比: two periods side by side", [q["start"], q["end"], by, base, base_start, base_end]),
              "trend": ("The monthly energy [tce] and its slope", [q["end"], months]),
              "pareto": ("重点能耗环节: units or meters ranked, the top 80 % flagged", [q["start"], q["end"], level, metric]),
              "balance": ("能源平衡表: rows per carrier [unit, tce], closure, conversion losses, warnings",
                          [q["start"], q["end"]]),
              "efficiency": ("Conversion efficiency per node; load factor and base load per unit",
                             [q["start"], q["end"], carrier]),
              "benchmarks": ("单位产品能源消耗限额: each product's specific consumption [kgce/t] against its "
                             "national limit, the grade reached", [q["start"], q["end"], product])}
    ok = {"200": {"description": "The analysis with its units", "content": {
        "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}}}
    return {f"/api/v1/analysis/{topic}": {"get": {
        "summary": summary, "tags": ["data"], "parameters": [q["entity"], *params, q["format"]], "x-data-kind": "analysis",
        "responses": {**ok, **_errors(400, 401, 403, 404, 422, 429, 502, 503)}}} for topic, (summary, params) in topics.items()}


def _components() -> dict[str, Any]:
    return {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"},
                            "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "__Host-lingtan"}},
        "schemas": {
            "Error": _error(),
            "Entity": {"type": "object", "required": ["id", "name", "type"], "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "type": {"type": "string", "enum": ["park", "enterprise"]}}},
            "Table": {"type": "object", "required": ["entity", "period", "start", "end", "units", "rows"],
                      "properties": {"entity": {"type": "string"}, "period": {"type": "string"},
                                     "start": {"type": "string"}, "end": {"type": "string"},
                                     "units": {"type": "object"}, "by": {"type": "string"},
                                     "rows": {"type": "array", "items": {"type": "object", "required": ["period_start"],
                                                                         "properties": {"period_start": {"type": "string"}}}}}},
            "Realtime": {"type": "object", "required": ["entity", "window", "rows"], "properties": {
                "entity": {"type": "string"}, "window": {"type": "string"},
                "rows": {"type": "array", "items": {"type": "object", "required": [
                    "enterprise", "meter", "point", "carrier", "value", "value_unit", "time"], "properties": {
                    "enterprise": {"type": "string"}, "unit": {"type": "string"}, "meter": {"type": "string"},
                    "point": {"type": "string"}, "carrier": {"type": "string"}, "role": {"type": "string"},
                    "value": {"type": "number", "nullable": True}, "value_unit": {"type": "string"},
                    "time": {"type": "string"}}}}}},
        },
    }
