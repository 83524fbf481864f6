"""The calc-service's relational data: park factor overrides, production data, import audit.

Every change records who made it, when and why; nothing is updated in place. A factor
override is superseded by a newer row (``active`` false on the old one), and a production
record is replaced by a newer record for the same enterprise, period and product, the old
one kept with ``superseded_by``. Imports are all-or-nothing: a file with any bad row is
refused with every error listed, and the refusal is recorded too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pandas as pd
from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lingtan.calc.factors import Factor
from lingtan.db import Base

TZ = "Asia/Shanghai"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FactorOverrideRow(Base):
    __tablename__ = "calc_factor_override"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    factor_id: Mapped[str] = mapped_column(String(200), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # the Factor, as validated
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ImportBatch(Base):
    """One import (API call or file), accepted or refused."""

    __tablename__ = "calc_import_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # production
    source: Mapped[str] = mapped_column(String(400))  # file name or "api"
    sha256: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    accepted: Mapped[bool] = mapped_column(Boolean)
    rows: Mapped[int] = mapped_column(Integer)
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)


class ProductionRecord(Base):
    """Output, output value and value added of an enterprise in a period (ERP/MES exchange)."""

    __tablename__ = "calc_production"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("calc_import_batch.id"))
    enterprise: Mapped[str] = mapped_column(String(100), index=True)
    period_type: Mapped[str] = mapped_column(String(10))  # day, month, year
    period_start: Mapped[dt.date] = mapped_column(index=True)
    product: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[float | None] = mapped_column(Float, nullable=True)
    product_unit: Mapped[str] = mapped_column(String(40), default="")
    production_unit: Mapped[str] = mapped_column(String(100), default="")
    output_value: Mapped[float | None] = mapped_column(Float, nullable=True)  # 万元
    value_added: Mapped[float | None] = mapped_column(Float, nullable=True)  # 万元
    superseded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


# --------------------------------------------------------------------------- factor overrides

def add_override(session: Session, factor: Factor) -> FactorOverrideRow:
    """Record a park override (validated :class:`Factor` with author and reason); supersedes its id."""
    if not factor.override:
        raise ValueError(f"factor {factor.id!r} is not marked override: true")
    for old in session.scalars(select(FactorOverrideRow).where(FactorOverrideRow.factor_id == factor.id,
                                                                FactorOverrideRow.active)):
        old.active = False
    stamped = factor.model_copy(update={"recorded_at": _now()})
    row = FactorOverrideRow(factor_id=factor.id, data=stamped.model_dump(mode="json"), author=factor.author or "",
                            reason=factor.reason or "")
    session.add(row)
    session.commit()
    return row


def active_overrides(session: Session) -> list[Factor]:
    return [Factor.model_validate(r.data) for r in
            session.scalars(select(FactorOverrideRow).where(FactorOverrideRow.active).order_by(FactorOverrideRow.id))]


def override_history(session: Session, factor_id: str | None = None) -> list[dict[str, Any]]:
    q = select(FactorOverrideRow).order_by(FactorOverrideRow.id)
    if factor_id:
        q = q.where(FactorOverrideRow.factor_id == factor_id)
    return [{"factor_id": r.factor_id, "author": r.author, "reason": r.reason, "recorded_at": r.recorded_at.isoformat(),
             "active": r.active, "factor": r.data} for r in session.scalars(q)]


# --------------------------------------------------------------------------- production data

PRODUCTION_FIELDS = ["enterprise", "period_type", "period_start", "product", "quantity", "product_unit",
                     "production_unit", "output_value", "value_added"]


def validate_production(rows: list[dict[str, Any]], enterprises: dict[str, set[str]], where: str) -> tuple[list[dict], list[str]]:
    """Check rows; return (clean rows, errors). Each error names the source, the row, the field and the value.

    ``enterprises`` maps enterprise id to its production unit ids.
    """
    clean, errors = [], []
    for n, raw in enumerate(rows, start=1):
        loc = f"{where}: row {n}"
        row: dict[str, Any] = {}
        unknown = set(raw) - set(PRODUCTION_FIELDS)
        if unknown:
            errors.append(f"{loc}: unknown column(s) {sorted(unknown)}")
            continue
        ent = str(raw.get("enterprise") or "").strip()
        if ent not in enterprises:
            errors.append(f"{loc}: enterprise {ent!r} is not an enterprise of the park")
            continue
        row["enterprise"] = ent
        ptype = str(raw.get("period_type") or "month").strip()
        if ptype not in ("day", "month", "year"):
            errors.append(f"{loc}: period_type {ptype!r} is not day, month or year")
            continue
        row["period_type"] = ptype
        try:
            start = pd.Timestamp(str(raw.get("period_start")).strip()).date()
        except (ValueError, TypeError):
            errors.append(f"{loc}: period_start {raw.get('period_start')!r} is not a date (YYYY-MM-DD)")
            continue
        if (ptype == "month" and start.day != 1) or (ptype == "year" and (start.month, start.day) != (1, 1)):
            errors.append(f"{loc}: period_start {start} is not the first day of a {ptype}")
            continue
        row["period_start"] = start
        for f in ("quantity", "output_value", "value_added"):
            v = raw.get(f)
            if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and pd.isna(v)):
                row[f] = None
                continue
            try:
                row[f] = float(v)
            except (TypeError, ValueError):
                errors.append(f"{loc}: {f} {v!r} is not a number")
                break
            if row[f] < 0:
                errors.append(f"{loc}: {f} {v!r} is negative")
                break
        else:
            row["product"] = str(raw.get("product") or "").strip()
            row["product_unit"] = str(raw.get("product_unit") or "").strip()
            row["production_unit"] = str(raw.get("production_unit") or "").strip()
            if row["quantity"] is not None and not (row["product"] and row["product_unit"]):
                errors.append(f"{loc}: a quantity needs its product and product_unit")
                continue
            if row["production_unit"] and row["production_unit"] not in enterprises[ent]:
                errors.append(f"{loc}: production_unit {row['production_unit']!r} is not a unit of {ent}")
                continue
            if row["quantity"] is None and row["output_value"] is None and row["value_added"] is None:
                errors.append(f"{loc}: no quantity, output_value or value_added")
                continue
            clean.append(row)
    return clean, errors


def import_production(session: Session, rows: list[dict[str, Any]], enterprises: dict[str, set[str]], *,
                      source: str, payload: bytes, author: str) -> ImportBatch:
    """Validate and store production rows, all or nothing; the batch is recorded either way."""
    clean, errors = validate_production(rows, enterprises, source)
    if not rows:
        errors.append(f"{source}: no rows")
    batch = ImportBatch(kind="production", source=source, sha256=hashlib.sha256(payload).hexdigest(), author=author,
                        accepted=not errors, rows=len(rows), errors=errors)
    session.add(batch)
    session.flush()
    if not errors:
        for r in clean:
            new = ProductionRecord(batch_id=batch.id, **r)
            session.add(new)
            session.flush()
            for old in session.scalars(select(ProductionRecord).where(
                    ProductionRecord.enterprise == r["enterprise"], ProductionRecord.period_type == r["period_type"],
                    ProductionRecord.period_start == r["period_start"], ProductionRecord.product == r["product"],
                    ProductionRecord.superseded_by.is_(None), ProductionRecord.id != new.id)):
                old.superseded_by = new.id
    session.commit()
    return batch


def production_frame(session: Session) -> pd.DataFrame:
    """Current production records as the frame :func:`lingtan.calc.results.account` takes (plus period_type)."""
    recs = session.scalars(select(ProductionRecord).where(ProductionRecord.superseded_by.is_(None))).all()
    rows = [(pd.Timestamp(r.period_start).tz_localize(TZ), r.enterprise, r.product, r.quantity, r.product_unit,
             r.output_value, r.value_added, r.production_unit, r.period_type) for r in recs]
    df = pd.DataFrame(rows, columns=["period", "entity", "product", "quantity", "product_unit", "output_value",
                                     "value_added", "unit", "period_type"])
    if df.empty:
        return df
    # the park's output value and value added: the sum of its enterprises'
    values = df[df["output_value"].notna() | df["value_added"].notna()]
    park = values.groupby(["period", "period_type"], as_index=False)[["output_value", "value_added"]].sum(min_count=1)
    park = park.assign(entity="park", product="", quantity=None, product_unit="", unit="")
    return pd.concat([df, park[df.columns]], ignore_index=True)


def read_table(payload: bytes, filename: str) -> list[dict[str, Any]]:
    """Rows of a CSV (UTF-8, with or without BOM) or XLSX upload; the first row is the header."""
    import io

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


class CalcRunRow(Base):
    """A calculation run that changed something, or was asked for (recalculation, factor change)."""

    __tablename__ = "calc_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(40), index=True)
    period: Mapped[str] = mapped_column(String(10))
    start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    lines: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    changed: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
