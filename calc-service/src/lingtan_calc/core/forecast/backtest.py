"""Rolling-origin backtest of day-ahead forecasts (Hyndman & Athanasopoulos, FPP3 §5.10,
"time series cross-validation").

For each origin (local midnight of a day in the test range) a model is fitted on the history
before the origin only, then forecasts the day ahead (the 24 hours from the origin, or 96
quarter hours); the forecasts of every origin are scored together against the actuals and
against the reference (previous-week persistence by default).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from lingtan_calc.core.forecast.metrics import scores
from lingtan_calc.core.forecast.models import Forecaster, Persistence

TZ = "Asia/Shanghai"


def origins(series: pd.Series, days: int) -> pd.DatetimeIndex:
    """The last ``days`` local midnights of ``series`` that have a whole day after them."""
    local_end = series.index[-1].tz_convert(TZ)
    last = (local_end + pd.Timedelta(hours=1)).normalize() - pd.Timedelta(days=1)
    return pd.date_range(end=last, periods=days, freq="D", tz=TZ)


def rolling_origin(series: pd.Series, make_model: Callable[[], Forecaster], days: int,
                   reference: Callable[[], Forecaster] = lambda: Persistence(168),
                   horizon_h: int = 24) -> dict[str, object]:
    """Backtest ``make_model()`` over the last ``days`` days of the hourly ``series``.

    Returns ``scores`` (MAE, RMSE, NRMSE, NMBE, skill over the reference), ``reference_scores``
    and ``forecasts`` (a DataFrame of actual, forecast and reference per hour, with its origin).
    """
    parts = []
    for origin in origins(series, days):
        history = series[series.index < origin]
        target = pd.date_range(origin, periods=horizon_h, freq="h")
        model = make_model().fit(history)
        ref = reference().fit(history)
        parts.append(pd.DataFrame({"origin": origin, "actual": series.reindex(target).to_numpy(),
                                   "forecast": model.forecast(target)["mean"].to_numpy(),
                                   "reference": ref.forecast(target)["mean"].to_numpy()}, index=target))
    table = pd.concat(parts)
    return {"scores": scores(table["actual"], table["forecast"], table["reference"]),
            "reference_scores": scores(table["actual"], table["reference"]), "forecasts": table}
