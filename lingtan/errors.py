"""The one JSON error format of every Lingtan HTTP API: ``{"error": {"status", "code", "message", "field"}}``."""

from __future__ import annotations

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
