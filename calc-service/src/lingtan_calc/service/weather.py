"""Weather on the calc API: the observations of a station as daily degree days, and the weather
normalisation of a period comparison (docs/analysis.md §3, "Weather").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lingtan.errors import ApiError
from lingtan.workdays import is_workday
from lingtan_calc.adapters.weather_store import latest_observation, weather_frame
from lingtan_calc.core.analysis.weather import (
    MIN_COVERAGE,
    daily_mean_temperature,
    degree_days,
    fit_weather_model,
    weather_normalised,
)

TZ = "Asia/Shanghai"
#: the weather model is fitted on at least this much daily history before the current period's
#: end (one year: every season in it, so that both heating and cooling terms can show)
FIT_DAYS = 365


def stations(svc) -> dict[str, Any]:
    """The park model's weather stations by id (empty without a ``weather`` block)."""
    weather = svc.park.weather
    return {} if weather is None else {s.id: s for s in weather.stations}


def station_of(svc, requested: str | None) -> str:
    known = stations(svc)
    if not known:
        raise ApiError(404, "no_weather_station", "the park model names no weather station (park model 'weather', "
                       "docs/park-model.md)", "station")
    station = requested or svc.park.weather.reference
    if station not in known:
        raise ApiError(400, "unknown_station", f"station {station!r} is not one of {sorted(known)}", "station")
    return station


def daily_degree_days(svc, station: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per local day of ``[start, end)`` with enough hours: mean temperature, HDD and CDD [°C, K·d]."""
    with svc.sessions() as s:
        obs = weather_frame(s, station, start, end)
    mean = daily_mean_temperature(obs["air_temperature"], TZ)
    cfg = svc.park.weather
    out = degree_days(mean, cfg.heating_base, cfg.cooling_base)
    out.insert(0, "air_temperature", mean)
    return out


def weather_body(svc, station: str | None, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    station = station_of(svc, station)
    days = daily_degree_days(svc, station, start, end)
    with svc.sessions() as s:
        latest = latest_observation(s, station)
    n_days = len(pd.date_range(start.tz_convert(TZ).normalize(), end.tz_convert(TZ), freq="D", inclusive="left"))
    cfg = svc.park.weather
    rows = [{"day": t.strftime("%Y-%m-%d"), "air_temperature": round(float(r.air_temperature), 3),
             "hdd": round(float(r.hdd), 3), "cdd": round(float(r.cdd), 3)} for t, r in days.iterrows()]
    return {"station": station, "start": start.isoformat(), "end": end.isoformat(),
            "heating_base": cfg.heating_base, "cooling_base": cfg.cooling_base,
            "days": n_days, "days_with_data": len(days), "hdd": float(days["hdd"].sum()), "cdd": float(days["cdd"].sum()),
            "latest_observation": None if latest is None else latest.isoformat(),
            "units": {"air_temperature": "°C", "hdd": "K·d", "cdd": "K·d"}, "rows": rows}


def _coverage(days: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> float:
    wanted = pd.date_range(start.tz_convert(TZ).normalize(), end.tz_convert(TZ), freq="D", inclusive="left")
    return len(days.index.intersection(wanted)) / len(wanted) if len(wanted) else 0.0


def _workdays(index: pd.DatetimeIndex) -> pd.Series:
    """Chinese working days (public holidays and make-up workdays) of the days in ``index``."""
    return pd.Series(is_workday(index), index=index, dtype=bool)


def weather_comparison(svc, energy_daily, base: tuple, current: tuple, energy_base: float,
                       energy_current: float) -> tuple[dict | None, str]:
    """(figures, note) of the comparison at the base period's weather; figures None with the reason in the note.

    ``energy_daily(start, end)`` gives the entity's energy per local day [tce] over a range.
    """
    if svc.park.weather is None:
        return None, "the park model names no weather station: no weather normalisation"
    station = svc.park.weather.reference
    fit_start = min(base[0], current[1] - pd.Timedelta(days=FIT_DAYS))
    days = daily_degree_days(svc, station, fit_start, current[1])
    for name, (lo, hi) in (("base", base), ("current", current)):
        share = _coverage(days, lo, hi)
        if share < MIN_COVERAGE:
            return None, (f"station {station}: temperature for {share:.0%} of the days of the {name} period "
                          f"(needs {MIN_COVERAGE:.0%}): no weather normalisation")
    daily = energy_daily(fit_start, current[1])
    try:
        model = fit_weather_model(daily, days[["hdd", "cdd"]], _workdays(days.index))
    except ValueError as exc:
        return None, f"station {station}: {exc}: no weather normalisation"
    in_range = lambda lo, hi: days[(days.index >= lo.tz_convert(TZ)) & (days.index < hi.tz_convert(TZ))]  # noqa: E731
    figures = weather_normalised(energy_base, energy_current, in_range(*base), in_range(*current), model)
    clean = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in model.items()}
    note = "" if model["weather_dependent"] else (
        f"no significant heating or cooling term in {model['days']} days (r² {model['r2']:.2f}): "
        "the weather explains none of the change")
    return {"station": station, "heating_base": svc.park.weather.heating_base,
            "cooling_base": svc.park.weather.cooling_base, "fit_start": fit_start.isoformat(),
            "fit_end": current[1].isoformat(), "model": clean, **figures}, note
