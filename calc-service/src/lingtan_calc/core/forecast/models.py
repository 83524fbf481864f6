"""Load forecast models: persistence baselines and a harmonic regression with ARIMA errors.

Every model has the same small interface, so that another one (a gradient-boosting model, a
vendor's service) can stand beside them: ``fit(history)`` on a regular hourly series [kW or
kWh/h], then ``forecast(index)`` for future times, returning ``mean``, ``lower`` and ``upper``
(the 80 % prediction interval) as a DataFrame on ``index``.

References
----------
.. [1] R. J. Hyndman, G. Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed. (2021),
   §10.5 "Dynamic harmonic regression" and §12.1 "Complex seasonality".
.. [2] statsmodels 0.15, ``statsmodels.tsa.statespace.sarimax.SARIMAX``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lingtan_calc.core.forecast.calendar import calendar_exog

#: the prediction interval every model reports: 80 %, the band an operator plans against
INTERVAL = 0.80
#: z of the two-sided 80 % normal interval
Z80 = 1.2815515655446004


class Forecaster(Protocol):
    name: str

    def fit(self, history: pd.Series) -> Forecaster: ...

    def forecast(self, index: pd.DatetimeIndex) -> pd.DataFrame: ...


def _check_history(history: pd.Series, min_hours: int) -> pd.Series:
    if not isinstance(history.index, pd.DatetimeIndex) or history.index.tz is None:
        raise ValueError("the history needs a tz-aware DatetimeIndex")
    clean = history.astype(float)
    if int(clean.notna().sum()) < min_hours:
        raise ValueError(f"{int(clean.notna().sum())} hours of history; this model needs at least {min_hours}")
    return clean


@dataclass
class Persistence:
    """Tomorrow as the same hours ``lag_h`` ago: 24 (previous day) or 168 (previous week).

    The interval is the spread of the model's own errors over the history (the empirical 10th
    and 90th percentiles of value − value ``lag_h`` earlier).
    """

    lag_h: int = 168
    history: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    _errors: tuple[float, float] = (0.0, 0.0)

    @property
    def name(self) -> str:
        return "persistence_day" if self.lag_h == 24 else "persistence_week" if self.lag_h == 168 \
            else f"persistence_{self.lag_h}h"

    def fit(self, history: pd.Series) -> Persistence:
        self.history = _check_history(history, self.lag_h + 1)
        diff = (self.history - self.history.shift(freq=pd.Timedelta(hours=self.lag_h))).dropna()
        if len(diff):
            self._errors = (float(diff.quantile((1 - INTERVAL) / 2)), float(diff.quantile((1 + INTERVAL) / 2)))
        return self

    def forecast(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        lag = pd.Timedelta(hours=self.lag_h)
        known = self.history
        mean = np.full(len(index), np.nan)
        # a horizon beyond one lag repeats the last known cycle again
        for i, t in enumerate(index):
            src = t - lag
            while src > known.index[-1]:
                src -= lag
            mean[i] = known.get(src, np.nan)
        lo, hi = self._errors
        return pd.DataFrame({"mean": mean, "lower": mean + lo, "upper": mean + hi}, index=index)


@dataclass
class HarmonicArima:
    """Dynamic harmonic regression: load = calendar regressors (daily and weekly Fourier terms, the
    Chinese working day and its own daily shape) + ARMA(p, q) errors, on the last ``window_days``.

    Fitted in two stages: ordinary least squares for the regression, then statsmodels' SARIMAX
    (no exog, a handful of parameters) on its residuals. A joint maximum-likelihood fit of the
    ~30 regression coefficients with the ARMA terms gives the same forecasts to within the
    noise but takes minutes and can diverge; the two-stage fit takes well under a second.
    Seasonality is in the regressors, not in seasonal ARIMA orders: a 168-hour seasonal order
    makes SARIMAX slow and memory-hungry ([1]_ §12.1). The 80 % interval is the ARMA
    forecast variance's (normal errors assumed; the regression coefficients taken as known).
    """

    order: tuple[int, int, int] = (2, 0, 1)
    daily_order: int = 6
    weekly_order: int = 3
    window_days: int = 56
    name: str = "harmonic_arima"
    _beta: np.ndarray | None = None
    _arma: Any = None
    _end: pd.Timestamp | None = None

    def _design(self, index: pd.DatetimeIndex) -> np.ndarray:
        exog = calendar_exog(index, self.daily_order, self.weekly_order)
        return np.column_stack([np.ones(len(index)), exog.to_numpy()])

    def fit(self, history: pd.Series) -> HarmonicArima:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        y = _check_history(history, 14 * 24)
        y = y[y.index > y.index[-1] - pd.Timedelta(days=self.window_days)].asfreq("h")
        design = self._design(y.index)
        known = y.notna().to_numpy()
        self._beta = np.linalg.lstsq(design[known], y.to_numpy()[known], rcond=None)[0]
        residual = y - design @ self._beta  # NaN where the hour is missing: the Kalman filter skips it
        self._arma = None
        # a load the calendar explains exactly leaves no errors to model (and a zero-variance
        # ARMA likelihood is undefined): the forecast is then the regression alone
        if float(np.nanstd(residual)) > 1e-9 * max(1.0, float(np.nanmean(np.abs(y)))):
            with warnings.catch_warnings():  # convergence chatter: the fit is judged by the backtest
                warnings.simplefilter("ignore")
                self._arma = SARIMAX(residual.to_numpy(), order=self.order, trend="n",
                                     missing="drop").fit(disp=False, maxiter=100)
        self._end = y.index[-1]
        return self

    def forecast(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        if self._end is None or self._beta is None:
            raise ValueError("fit the model before forecasting")
        step = pd.Timedelta(hours=1)
        if index[0] <= self._end:
            raise ValueError(f"forecast times must follow the history, which ends {self._end.isoformat()}")
        steps = int((index[-1] - self._end) / step)
        future = pd.date_range(self._end + step, periods=steps, freq="h")
        errors, variance = np.zeros(steps), np.zeros(steps)
        if self._arma is not None:
            pred = self._arma.get_forecast(steps=steps)
            errors, variance = np.asarray(pred.predicted_mean), np.asarray(pred.var_pred_mean)
        frame = pd.DataFrame({"mean": self._design(future) @ self._beta + errors}, index=future)
        sd = np.sqrt(variance)
        frame["lower"], frame["upper"] = frame["mean"] - Z80 * sd, frame["mean"] + Z80 * sd
        return frame.reindex(index)
