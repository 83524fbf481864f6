"""Weather observations: hourly air temperature and irradiance per station, imported like production data.

A weather feed (the park's own station, the meteorological service's data, a vendor, or the demo
simulator) posts rows to ``POST /api/v1/weather`` or uploads a file to ``/api/v1/weather/import``
(docs/analysis.md §3, "Weather"). Imports are all or nothing and recorded as an
:class:`~lingtan_calc.adapters.store.ImportBatch` either way; a later observation for the same
station and time supersedes the earlier one, which is kept (``superseded_by``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pandas as pd
from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lingtan.db import Base
from lingtan_calc.adapters.store import ImportBatch

TZ = "Asia/Shanghai"
WEATHER_FIELDS = ["station", "time", "air_temperature", "ghi"]
#: plausible air temperature [°C]: beyond China's recorded extremes (about −53 °C at Mohe and
#: 50 °C at Turpan) with a margin; a value outside is a unit or sensor error, not weather
TEMPERATURE_RANGE = (-60.0, 60.0)
#: plausible global horizontal irradiance [W/m²]: the solar constant is 1361 W/m²; cloud
#: enhancement can briefly exceed it at the ground, not by more than about 10 %
GHI_RANGE = (0.0, 1500.0)
#: how far ahead of the server's clock an observation may be stamped (clock skew of a feed) [s]
MAX_FUTURE_S = 3600
#: the earliest observation the platform keeps (its data starts in this century, as the calc API's ranges do)
EARLIEST = pd.Timestamp("2000-01-01", tz=TZ)


class WeatherRecord(Base):
    __tablename__ = "calc_weather"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("calc_import_batch.id"))
    station: Mapped[str] = mapped_column(String(100), index=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)  # UTC
    air_temperature: Mapped[float | None] = mapped_column(Float, nullable=True)  # [°C]
    ghi: Mapped[float | None] = mapped_column(Float, nullable=True)  # [W/m²]
    superseded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


def _time(raw: Any, loc: str, now: pd.Timestamp) -> tuple[pd.Timestamp | None, str]:
    try:
        t = pd.Timestamp(str(raw).strip())
    except (ValueError, TypeError, OverflowError):
        return None, f"{loc}: time {raw!r} is not an ISO 8601 time (e.g. 2026-07-01T14:00+08:00)"
    if pd.isna(t):
        return None, f"{loc}: time is required"
    t = t.tz_localize(TZ) if t.tzinfo is None else t  # a time without offset is the park's local time
    if t < EARLIEST:
        return None, f"{loc}: time {raw!r} is before {EARLIEST.date()}"
    if (t - now).total_seconds() > MAX_FUTURE_S:
        return None, f"{loc}: time {raw!r} is in the future; an observation cannot be"
    return t.tz_convert("UTC"), ""


def _measure(raw: dict[str, Any], field: str, bounds: tuple[float, float], unit: str, loc: str) -> tuple[float | None, str]:
    v = raw.get(field)
    if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and pd.isna(v)):
        return None, ""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None, f"{loc}: {field} {v!r} is not a number [{unit}]"
    if not bounds[0] <= x <= bounds[1]:
        return None, f"{loc}: {field} {v!r} is outside {bounds[0]:g}..{bounds[1]:g} {unit}"
    return x, ""


def _row(raw: dict[str, Any], loc: str, stations: set[str], now: pd.Timestamp) -> tuple[dict[str, Any], str]:
    unknown = set(raw) - set(WEATHER_FIELDS)
    if unknown:
        return {}, f"{loc}: unknown column(s) {sorted(unknown)}; use {WEATHER_FIELDS}"
    station = str(raw.get("station") or "").strip()
    if station not in stations:
        return {}, f"{loc}: station {station!r} is not a weather station of the park model ({sorted(stations)})"
    t, error = _time(raw.get("time"), loc, now)
    if error:
        return {}, error
    temp, error = _measure(raw, "air_temperature", TEMPERATURE_RANGE, "°C", loc)
    if error:
        return {}, error
    ghi, error = _measure(raw, "ghi", GHI_RANGE, "W/m²", loc)
    if error:
        return {}, error
    if temp is None and ghi is None:
        return {}, f"{loc}: no air_temperature or ghi"
    return {"station": station, "time": t.to_pydatetime(), "air_temperature": temp, "ghi": ghi}, ""


def validate_weather(rows: list[dict[str, Any]], stations: set[str], where: str,
                     now: pd.Timestamp | None = None) -> tuple[list[dict], list[str]]:
    """Check rows; return (clean rows, errors), each error naming the source, row, field and value."""
    now = now or pd.Timestamp.now(tz="UTC")
    clean, errors, seen = [], [], {}
    for n, raw in enumerate(rows, start=1):
        loc = f"{where}: row {n}"
        row, error = _row(raw, loc, stations, now)
        if error:
            errors.append(error)
            continue
        key = (row["station"], row["time"])
        if key in seen:
            errors.append(f"{loc}: station {key[0]!r} at {pd.Timestamp(key[1]).isoformat()} repeats row {seen[key]}")
            continue
        seen[key] = n
        clean.append(row)
    return clean, errors


def import_weather(session: Session, rows: list[dict[str, Any]], stations: set[str], *, source: str,
                   payload: bytes, author: str, now: pd.Timestamp | None = None) -> ImportBatch:
    """Validate and store observations, all or nothing; the batch is recorded either way."""
    clean, errors = validate_weather(rows, stations, source, now)
    if not rows:
        errors.append(f"{source}: no rows")
    batch = ImportBatch(kind="weather", source=source, sha256=hashlib.sha256(payload).hexdigest(), author=author,
                        accepted=not errors, rows=len(rows), errors=errors)
    session.add(batch)
    session.flush()
    if not errors:
        new = [WeatherRecord(batch_id=batch.id, **r) for r in clean]
        session.add_all(new)
        session.flush()
        _supersede(session, new)
    session.commit()
    return batch


def _supersede(session: Session, new: list[WeatherRecord]) -> None:
    """Mark the current observations that the new ones replace (same station and time)."""
    by_key = {(r.station, _utc(r.time)): r.id for r in new}
    lo, hi = min(r.time for r in new), max(r.time for r in new)
    stations = {r.station for r in new}
    ids = {r.id for r in new}
    for old in session.scalars(select(WeatherRecord).where(
            WeatherRecord.station.in_(stations), WeatherRecord.time >= lo, WeatherRecord.time <= hi,
            WeatherRecord.superseded_by.is_(None))):
        replacement = by_key.get((old.station, _utc(old.time)))
        if replacement is not None and old.id not in ids:
            old.superseded_by = replacement


def _utc(t: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes: they are the UTC that was stored."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def weather_frame(session: Session, station: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Current observations of ``station`` in ``[start, end)``: index time (UTC), air_temperature [°C], ghi [W/m²]."""
    recs = session.execute(select(WeatherRecord.time, WeatherRecord.air_temperature, WeatherRecord.ghi).where(
        WeatherRecord.station == station, WeatherRecord.time >= start.tz_convert("UTC").to_pydatetime(),
        WeatherRecord.time < end.tz_convert("UTC").to_pydatetime(),
        WeatherRecord.superseded_by.is_(None)).order_by(WeatherRecord.time)).all()
    index = pd.DatetimeIndex([_utc(r[0]) for r in recs], name="time")
    if index.tz is None:
        index = index.tz_localize("UTC")
    return pd.DataFrame({"air_temperature": [r[1] for r in recs], "ghi": [r[2] for r in recs]}, index=index,
                        dtype=float)


def latest_observation(session: Session, station: str) -> pd.Timestamp | None:
    """Time of the newest current observation of ``station`` (UTC), None without any."""
    t = session.scalar(select(WeatherRecord.time).where(WeatherRecord.station == station,
                                                       WeatherRecord.superseded_by.is_(None))
                       .order_by(WeatherRecord.time.desc()).limit(1))
    return None if t is None else pd.Timestamp(_utc(t))
