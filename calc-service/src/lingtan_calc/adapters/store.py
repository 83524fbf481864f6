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

from lingtan.db import Base
from lingtan_calc.core.accounting.factors import Factor

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


def _common(raw: dict[str, Any], loc: str, enterprises: dict[str, set[str]],
            fields: list[str]) -> tuple[dict[str, Any], str]:
    """The enterprise and period of an activity row; (row so far, "" or the error)."""
    row: dict[str, Any] = {}
    unknown = set(raw) - set(fields)
    if unknown:
        return row, f"{loc}: unknown column(s) {sorted(unknown)}"
    ent = str(raw.get("enterprise") or "").strip()
    if ent not in enterprises:
        return row, f"{loc}: enterprise {ent!r} is not an enterprise of the park"
    row["enterprise"] = ent
    ptype = str(raw.get("period_type") or "month").strip()
    if ptype not in ("day", "month", "year"):
        return row, f"{loc}: period_type {ptype!r} is not day, month or year"
    row["period_type"] = ptype
    try:
        start = pd.Timestamp(str(raw.get("period_start")).strip()).date()
    except (ValueError, TypeError):
        return row, f"{loc}: period_start {raw.get('period_start')!r} is not a date (YYYY-MM-DD)"
    if (ptype == "month" and start.day != 1) or (ptype == "year" and (start.month, start.day) != (1, 1)):
        return row, f"{loc}: period_start {start} is not the first day of a {ptype}"
    row["period_start"] = start
    return row, ""


def _number(raw: dict[str, Any], field: str, loc: str, *, required: bool = False) -> tuple[float | None, str]:
    v = raw.get(field)
    if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and pd.isna(v)):
        return None, (f"{loc}: {field} is required" if required else "")
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None, f"{loc}: {field} {v!r} is not a number"
    if x < 0:
        return None, f"{loc}: {field} {v!r} is negative"
    return x, ""


def validate_production(rows: list[dict[str, Any]], enterprises: dict[str, set[str]], where: str) -> tuple[list[dict], list[str]]:
    """Check rows; return (clean rows, errors). Each error names the source, the row, the field and the value.

    ``enterprises`` maps enterprise id to its production unit ids.
    """
    clean, errors = [], []
    for n, raw in enumerate(rows, start=1):
        loc = f"{where}: row {n}"
        row, error = _common(raw, loc, enterprises, PRODUCTION_FIELDS)
        if error:
            errors.append(error)
            continue
        for f in ("quantity", "output_value", "value_added"):
            row[f], error = _number(raw, f, loc)
            if error:
                errors.append(error)
                break
        else:
            row["product"] = str(raw.get("product") or "").strip()
            row["product_unit"] = str(raw.get("product_unit") or "").strip()
            row["production_unit"] = str(raw.get("production_unit") or "").strip()
            if row["quantity"] is not None and not (row["product"] and row["product_unit"]):
                errors.append(f"{loc}: a quantity needs its product and product_unit")
                continue
            if row["production_unit"] and row["production_unit"] not in enterprises[row["enterprise"]]:
                errors.append(f"{loc}: production_unit {row['production_unit']!r} is not a unit of {row['enterprise']}")
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
    """Current production records as the frame :func:`lingtan_calc.core.accounting.results.account` takes (plus period_type)."""
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


# --------------------------------------------------------------------------- process activities, green power

class ProcessRecord(Base):
    """Process activity data (GB/T 32150: e.g. carbonate calcined) of an enterprise in a period."""

    __tablename__ = "calc_process"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("calc_import_batch.id"))
    enterprise: Mapped[str] = mapped_column(String(100), index=True)
    period_type: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[dt.date] = mapped_column(index=True)
    material: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[float] = mapped_column(Float)  # t
    fraction: Mapped[float] = mapped_column(Float, default=1.0)
    production_unit: Mapped[str] = mapped_column(String(100), default="")
    superseded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class GreenRecord(Base):
    """Green-power contracts and GECs an enterprise claims for a period (market-based electricity)."""

    __tablename__ = "calc_green"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("calc_import_batch.id"))
    enterprise: Mapped[str] = mapped_column(String(100), index=True)
    period_type: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[dt.date] = mapped_column(index=True)
    instrument: Mapped[str] = mapped_column(String(40))  # green_power_contract | gec
    reference: Mapped[str] = mapped_column(String(400))  # contract number or certificate ids
    kwh: Mapped[float] = mapped_column(Float)
    superseded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


PROCESS_FIELDS = ["enterprise", "period_type", "period_start", "material", "quantity", "fraction", "production_unit"]
GREEN_FIELDS = ["enterprise", "period_type", "period_start", "instrument", "reference", "kwh", "certificates"]
GEC_KWH = 1000.0  # 1 GEC = 1 000 kWh (发改能源〔2023〕1044号)


def validate_activity(kind: str, rows: list[dict[str, Any]], enterprises: dict[str, set[str]], where: str,
                      materials: set[str]) -> tuple[list[dict], list[str]]:
    """Check process (``kind`` process) or green-power (``green``) rows; errors name row, field and value."""
    clean, errors = [], []
    for n, raw in enumerate(rows, start=1):
        loc = f"{where}: row {n}"
        row, error = _common(raw, loc, enterprises, PROCESS_FIELDS if kind == "process" else GREEN_FIELDS)
        if not error and kind == "process":
            row["material"] = str(raw.get("material") or "").strip()
            row["production_unit"] = str(raw.get("production_unit") or "").strip()
            row["quantity"], error = _number(raw, "quantity", loc, required=True)
            if not error:
                fraction, error = _number(raw, "fraction", loc)
                row["fraction"] = 1.0 if fraction is None else fraction
            if not error and row["material"] not in materials:
                error = f"{loc}: material {row['material']!r} has no process emission factor ({', '.join(sorted(materials))})"
            if not error and not 0 < row["fraction"] <= 1:
                error = f"{loc}: fraction {row['fraction']!r} is not within (0, 1]"
        elif not error:
            row["instrument"] = str(raw.get("instrument") or "").strip()
            row["reference"] = str(raw.get("reference") or "").strip()
            kwh, error = _number(raw, "kwh", loc)
            certs, error2 = _number(raw, "certificates", loc)
            error = error or error2
            if not error and row["instrument"] not in ("green_power_contract", "gec"):
                error = f"{loc}: instrument {row['instrument']!r} is not green_power_contract or gec"
            if not error and not row["reference"]:
                error = f"{loc}: reference (contract number or certificate ids) is required"
            if not error and (kwh is None) == (certs is None):
                error = f"{loc}: give kwh or certificates (1 GEC = 1 000 kWh), one of them"
            row["kwh"] = kwh if kwh is not None else (certs or 0.0) * GEC_KWH
        if error:
            errors.append(error)
        else:
            clean.append(row)
    return clean, errors


def import_activity(session: Session, kind: str, rows: list[dict[str, Any]], enterprises: dict[str, set[str]], *,
                    source: str, payload: bytes, author: str, materials: set[str]) -> ImportBatch:
    """Validate and store process or green-power rows, all or nothing; the batch is recorded either way."""
    clean, errors = validate_activity(kind, rows, enterprises, source, materials)
    if not rows:
        errors.append(f"{source}: no rows")
    batch = ImportBatch(kind=kind, source=source, sha256=hashlib.sha256(payload).hexdigest(), author=author,
                        accepted=not errors, rows=len(rows), errors=errors)
    session.add(batch)
    session.flush()
    model = ProcessRecord if kind == "process" else GreenRecord
    key = "material" if kind == "process" else "reference"
    if not errors:
        for r in clean:
            new = model(batch_id=batch.id, **r)
            session.add(new)
            session.flush()
            for old in session.scalars(select(model).where(
                    model.enterprise == r["enterprise"], model.period_type == r["period_type"],
                    model.period_start == r["period_start"], getattr(model, key) == r[key],
                    model.superseded_by.is_(None), model.id != new.id)):
                old.superseded_by = new.id
    session.commit()
    return batch


def process_frame(session: Session) -> pd.DataFrame:
    """Current process records for the enterprise and the park (PROCESS_COLUMNS of results, plus period_type)."""
    recs = session.scalars(select(ProcessRecord).where(ProcessRecord.superseded_by.is_(None))).all()
    rows = []
    for r in recs:
        for entity in (r.enterprise, "park"):
            rows.append((pd.Timestamp(r.period_start).tz_localize(TZ), entity, r.enterprise, r.production_unit,
                         r.material, r.quantity, r.fraction, r.period_type))
    return pd.DataFrame(rows, columns=["period", "entity", "enterprise", "unit", "material", "quantity", "fraction",
                                       "period_type"])


def green_frame(session: Session) -> pd.DataFrame:
    """Current green-power claims per enterprise and the park: period, entity, kwh, period_type."""
    recs = session.scalars(select(GreenRecord).where(GreenRecord.superseded_by.is_(None))).all()
    rows = [(pd.Timestamp(r.period_start).tz_localize(TZ), entity, r.kwh, r.period_type)
            for r in recs for entity in (r.enterprise, "park")]
    return pd.DataFrame(rows, columns=["period", "entity", "kwh", "period_type"])
