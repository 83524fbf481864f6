"""The one JSON error format of every Lingtan HTTP API: ``{"error": {"status", "code", "message", "field"}}``.

An unexpected error never shows its text to the client: the answer carries an error ``id``
and the log holds the traceback under the same id (:func:`internal_error`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any


class ApiError(Exception):
    """An error answered in the JSON error format (or, by the portal, as an HTML page)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_body(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field:
        err["field"] = field
    return {"error": err}


def internal_error(log: logging.Logger, what: str = "") -> dict[str, Any]:
    """Log the exception being handled with a new error id; the client's body names only the id."""
    error_id = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s%s", error_id, f" on {what}" if what else "")
    body = error_body(500, "internal_error", f"internal error {error_id}: the service log has the details")
    body["error"]["id"] = error_id
    return body


def register_json_errors(app) -> None:
    """Answer ApiError, HTTP errors and anything unexpected in the JSON error format (a service adds its own
    handlers for its own exceptions after this)."""
    from flask import jsonify, request
    from werkzeug.exceptions import HTTPException

    log = logging.getLogger(app.import_name)

    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        return jsonify(error_body(e.status, e.code, e.message, e.field)), e.status

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        code = e.code or 500
        return jsonify(error_body(code, (e.name or "error").lower().replace(" ", "_"), e.description or "")), code

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        return jsonify(internal_error(log, f"{request.method} {request.path}")), 500
