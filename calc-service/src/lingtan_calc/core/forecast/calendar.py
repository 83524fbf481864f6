"""Calendar regressors of the load models: daily and weekly Fourier terms and the Chinese working day.

Seasonality goes into exogenous regressors instead of large seasonal ARIMA orders: a
SARIMAX with a seasonal period of 168 hours is slow and memory-hungry (statsmodels builds a
state vector of 168+ elements), while 2K Fourier columns carry the same daily and weekly shape
(Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., §12.1 "Complex
seasonality", dynamic harmonic regression). The working day follows the State Council's
holiday notices with their make-up workdays (调休), as tabulated by ``chinesecalendar``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lingtan.workdays import is_workday

TZ = "Asia/Shanghai"
DAY_H, WEEK_H = 24.0, 168.0


def fourier(index: pd.DatetimeIndex, period_h: float, order: int) -> pd.DataFrame:
    """``sin(2πk t/P)``, ``cos(2πk t/P)`` for k = 1..order, t in local hours since the epoch week [-]."""
    local = index.tz_convert(TZ)
    # local wall-clock hours, so that the daily terms keep to the clock (Asia/Shanghai has no DST)
    hours = (local.tz_localize(None).as_unit("ns").asi8 / 3.6e12).astype(float)
    cols = {}
    for k in range(1, order + 1):
        w = 2.0 * np.pi * k * hours / period_h
        cols[f"sin{int(period_h)}_{k}"] = np.sin(w)
        cols[f"cos{int(period_h)}_{k}"] = np.cos(w)
    return pd.DataFrame(cols, index=index)


def calendar_exog(index: pd.DatetimeIndex, daily_order: int = 6, weekly_order: int = 3) -> pd.DataFrame:
    """The regressors of an hourly (or 15-min) load model at ``index`` (tz-aware).

    Columns: daily Fourier terms, weekly Fourier terms, ``workday`` (0/1) and the daily terms
    times ``workday`` (a worked day has its own daily shape: shifts start, offices fill).
    """
    local = index.tz_convert(TZ)
    workday = is_workday(local.normalize()).astype(float)
    daily = fourier(index, DAY_H, daily_order)
    worked = daily.mul(workday, axis=0).add_prefix("wd_")
    weekly = fourier(index, WEEK_H, weekly_order)
    return pd.concat([daily, weekly, pd.DataFrame({"workday": workday}, index=index), worked], axis=1)
