"""Day-ahead PV and wind output from the meter's own history.

PV: a clear-sky model chain. pvlib's clear-sky irradiance at the park's location gives the
shape of a clear day; the plant's clear-sky output is that shape times a scale fitted on its
own clearest recent hours (so no panel data is needed); the forecast is the clear-sky output
times a clearness index: the one a weather feed supplies for the forecast hours, else the
recent one (the ratio of what the plant delivered to its clear-sky output over the last days).
This is the "smart persistence" (clear-sky persistence) reference of solar forecasting
(Yang et al., "Verification of deterministic solar forecasts", Solar Energy 210 (2020), §3.2).

Wind: persistence blended into climatology, ``f(h) = m + (x − m) · e^{−h/τ}`` with the last hour
``x``, the recent mean ``m`` and lead time ``h``; beyond a few hours the recent mean is the best
a forecast without a numerical weather model can do (Giebel et al., "The state of the art in
short-term prediction of wind power", ANEMOS D1.2 (2011), §2.1).

Every function takes and returns hourly pandas Series indexed by the hour's start (tz-aware),
values the hour's mean power [kW] (= kWh in the hour).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lingtan_calc.core.forecast.models import INTERVAL

#: clear-sky GHI below which an hour is night or twilight and carries no information on the scale [W/m²]
MIN_CLEARSKY_GHI = 50.0
#: the scale is the upper envelope of output per clear-sky irradiance: this quantile of the daytime ratios
SCALE_QUANTILE = 0.95
#: days of history behind the scale, and behind the recent clearness index
SCALE_DAYS, CLEARNESS_DAYS = 30, 3
#: correlation time of wind power persistence [h]
WIND_TAU_H = 4.0


def clearsky_ghi(index: pd.DatetimeIndex, latitude: float, longitude: float, altitude: float = 0.0) -> pd.Series:
    """Clear-sky global horizontal irradiance at the middle of each hour [W/m²] (pvlib, Ineichen-Perez
    with the climatological Linke turbidity; Haurwitz when the turbidity table cannot be read)."""
    from pvlib.location import Location

    site = Location(latitude, longitude, altitude=altitude)
    mid = index + pd.Timedelta(minutes=30)
    try:
        ghi = site.get_clearsky(mid, model="ineichen")["ghi"]
    except (OSError, ImportError, KeyError):
        ghi = site.get_clearsky(mid, model="haurwitz")["ghi"]
    return pd.Series(np.clip(ghi.to_numpy(float), 0.0, None), index=index)


def clearsky_scale(output: pd.Series, ghi_clear: pd.Series) -> float:
    """Output of the plant per unit of clear-sky irradiance on its clearest hours [kW per W/m²]."""
    both = pd.concat([output.rename("p"), ghi_clear.rename("g")], axis=1, join="inner").dropna()
    day = both[both["g"] >= MIN_CLEARSKY_GHI]
    if len(day) < 24:
        raise ValueError(f"{len(day)} daytime hours of PV history; the clear-sky scale needs at least 24")
    return float((day["p"] / day["g"]).quantile(SCALE_QUANTILE))


def recent_clearness(output: pd.Series, clear_output: pd.Series) -> float:
    """Σ output / Σ clear-sky output over the daytime hours given [-], in [0, 1.2]."""
    both = pd.concat([output.rename("p"), clear_output.rename("c")], axis=1, join="inner").dropna()
    total = float(both["c"].sum())
    if total <= 0.0:
        raise ValueError("no daytime hour in the recent PV history")
    return float(np.clip(both["p"].sum() / total, 0.0, 1.2))


def pv_day_ahead(history: pd.Series, ghi_clear_history: pd.Series, ghi_clear_future: pd.Series,
                 clearness: float | pd.Series | None = None) -> pd.DataFrame:
    """PV output forecast with an 80 % interval [kW] on the index of ``ghi_clear_future``.

    Parameters
    ----------
    history : pandas.Series
        The plant's hourly output [kW], at least 24 daytime hours, the last :data:`SCALE_DAYS` used.
    ghi_clear_history, ghi_clear_future : pandas.Series
        Clear-sky GHI [W/m²] over the history and the forecast hours (:func:`clearsky_ghi`).
    clearness : float or pandas.Series, optional
        Clearness index of the forecast hours from a weather feed [-]; default the recent one.

    Returns
    -------
    pandas.DataFrame
        ``mean``, ``lower``, ``upper`` [kW]: the interval spans the 10th to 90th percentile of
        the daily clearness indices of the history (what a day can turn out like).
    """
    last = history.index[-1]
    recent = history[history.index > last - pd.Timedelta(days=SCALE_DAYS)]
    scale = clearsky_scale(recent, ghi_clear_history)
    clear_hist = scale * ghi_clear_history.reindex(recent.index)
    daytime = clear_hist[ghi_clear_history.reindex(recent.index) >= MIN_CLEARSKY_GHI]
    if clearness is None:
        window = daytime[daytime.index > last - pd.Timedelta(days=CLEARNESS_DAYS)]
        clearness = recent_clearness(recent.reindex(window.index), window)
    clear_future = scale * ghi_clear_future
    mean = np.clip(clear_future * clearness, 0.0, None)
    days = pd.concat([recent.reindex(daytime.index).rename("p"), daytime.rename("c")], axis=1).dropna()
    by_day = days.groupby(days.index.tz_convert("Asia/Shanghai").date).sum()
    daily = (by_day["p"] / by_day["c"]).clip(0.0, 1.2)
    lo_k, hi_k = daily.quantile((1 - INTERVAL) / 2), daily.quantile((1 + INTERVAL) / 2)
    return pd.DataFrame({"mean": mean, "lower": np.minimum(mean, clear_future * lo_k),
                         "upper": np.maximum(mean, clear_future * hi_k)}, index=ghi_clear_future.index)


def wind_day_ahead(history: pd.Series, index: pd.DatetimeIndex, recent_days: int = 7) -> pd.DataFrame:
    """Wind output forecast with an 80 % interval [kW]: persistence decaying into the recent mean.

    The interval is the 10th to 90th percentile of the hourly output over the last
    ``recent_days`` (the climatological spread), narrowed near the origin in proportion to the
    persistence weight.
    """
    recent = history[history.index > history.index[-1] - pd.Timedelta(days=recent_days)].dropna()
    if len(recent) < 24:
        raise ValueError(f"{len(recent)} hours of wind history; the forecast needs at least 24")
    last, mean = float(recent.iloc[-1]), float(recent.mean())
    lead_h = ((index - history.index[-1]) / pd.Timedelta(hours=1)).to_numpy(float)
    weight = np.exp(-np.clip(lead_h, 0.0, None) / WIND_TAU_H)
    centre = mean + (last - mean) * weight
    lo, hi = recent.quantile((1 - INTERVAL) / 2), recent.quantile((1 + INTERVAL) / 2)
    return pd.DataFrame({"mean": centre, "lower": np.minimum(centre, centre + (lo - mean) * (1 - weight)),
                         "upper": np.maximum(centre, centre + (hi - mean) * (1 - weight))}, index=index)
