"""Uploaded tables: the rows of a CSV or XLSX file sent in a request's form field ``file``.

Shared by the calc-service (production, process and green-power imports) and the auth proxy
(which reads the enterprises an import names before forwarding it, docs/security.md).
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from lingtan.errors import ApiError


def read_table(payload: bytes, filename: str) -> list[dict[str, Any]]:
    """Rows of a CSV (UTF-8, with or without BOM) or XLSX upload; the first row is the header."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        df = pd.read_excel(io.BytesIO(payload), dtype=object, engine="openpyxl")
    elif name.endswith(".csv"):
        df = pd.read_csv(io.BytesIO(payload), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    else:
        raise ValueError(f"{filename}: expected a .csv or .xlsx file")
    df.columns = [str(c).strip() for c in df.columns]
    return [{k: (None if (isinstance(v, float) and pd.isna(v)) else v) for k, v in row.items()}
            for row in df.to_dict(orient="records")]


def uploaded_table() -> tuple[list[dict], str, bytes]:
    """(rows, file name, bytes) of the CSV or XLSX file in this request's form field ``file``."""
    from flask import request

    f = request.files.get("file")
    if f is None or not f.filename:
        raise ApiError(400, "file_required", "upload a CSV or XLSX file in the form field 'file'", "file")
    payload = f.read()
    try:
        return read_table(payload, f.filename), f.filename, payload
    except Exception as exc:  # unreadable spreadsheet: name the file
        raise ApiError(400, "unreadable_file", f"{f.filename}: {exc}", "file") from None
