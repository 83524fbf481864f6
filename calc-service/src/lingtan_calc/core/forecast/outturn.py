"""Month-end and year-end outturn of energy [tce] and CO₂ [t] with a prediction interval.

The projected outturn of a period is what has been counted so far plus a forecast of the rest:

.. math:: \\hat E = E_{to\\ date} + \\sum_d w_d\\,(a + b\\,\\mathrm{workday}_d)

with ``a`` and ``b`` fitted by least squares on the last :data:`FIT_DAYS` whole days (a
non-working day of a park uses less, and the calendar knows which days those are), and
``w_d`` the share of day ``d`` still to come (1 for a whole day, less for the rest of today).
The daily errors are correlated (a slow month stays slow for a while): with residual standard
deviation ``σ`` and lag-one autocorrelation ``ρ`` of the fit, the variance of the sum is
:math:`\\sigma^2 \\sum_i \\sum_j w_i w_j \\rho^{|i-j|}` (an AR(1) error model), and the 80 %
interval is ±1.2816 of its square root (Hyndman & Athanasopoulos, FPP3 §5.5 and §9.7).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lingtan.workdays import is_workday
from lingtan_calc.core.forecast.models import Z80

#: whole days of history behind the daily model, and the fewest it accepts
FIT_DAYS, MIN_DAYS = 56, 14
#: the residual autocorrelation is capped: a ρ near 1 from a short fit would make the interval explode
MAX_RHO = 0.9


def fit_daily(daily: pd.Series) -> dict[str, float]:
    """Daily model ``a + b·workday`` of the last :data:`FIT_DAYS` days (index: local days).

    Returns ``a``, ``b`` [unit per day], ``sigma`` (residual standard deviation, n − 2 degrees
    of freedom) and ``rho`` (lag-one autocorrelation of the residuals, clipped to [0, 0.9]).
    """
    clean = daily.dropna()
    clean = clean[clean.index > clean.index[-1] - pd.Timedelta(days=FIT_DAYS)] if len(clean) else clean
    if len(clean) < MIN_DAYS:
        raise ValueError(f"{len(clean)} whole days of history; the outturn needs at least {MIN_DAYS}")
    work = is_workday(clean.index).astype(float)
    design = np.column_stack([np.ones(len(clean)), work]) if 0 < work.sum() < len(work) else np.ones((len(clean), 1))
    coef = np.linalg.lstsq(design, clean.to_numpy(float), rcond=None)[0]
    resid = clean.to_numpy(float) - design @ coef
    sigma = float(np.sqrt(np.sum(resid ** 2) / max(len(resid) - design.shape[1], 1)))
    rho = float(np.corrcoef(resid[:-1], resid[1:])[0, 1]) if len(resid) > 2 and np.std(resid) > 0 else 0.0
    b = float(coef[1]) if len(coef) > 1 else 0.0
    return {"a": float(coef[0]), "b": b, "sigma": sigma, "rho": float(np.clip(np.nan_to_num(rho), 0.0, MAX_RHO))}


def outturn(to_date: float, daily: pd.Series, remaining: pd.Series) -> dict[str, float]:
    """Projected outturn of a period and its 80 % interval.

    Parameters
    ----------
    to_date : float
        Counted since the period started [unit].
    daily : pandas.Series
        Whole days of history [unit per day], indexed by local day (tz-aware midnights).
    remaining : pandas.Series
        Share of each day still to come, in (0, 1], indexed by local day.

    Returns
    -------
    dict
        ``actual_to_date``, ``forecast_rest``, ``projected``, ``lower``, ``upper`` [unit] and
        ``sd`` (standard deviation of the rest) [unit].
    """
    # an entity that passes on more than it takes in (an energy-service company delivering its CHP
    # power and steam to tenants) has a negative net figure (docs/accounting.md §2): allowed
    if not np.isfinite(to_date):
        raise ValueError(f"the amount to date must be a finite number, got {to_date}")
    model = fit_daily(daily)
    w = remaining.to_numpy(float)
    if len(w) == 0:
        return {"actual_to_date": to_date, "forecast_rest": 0.0, "projected": to_date, "lower": to_date,
                "upper": to_date, "sd": 0.0}
    per_day = model["a"] + model["b"] * is_workday(remaining.index).astype(float)
    rest = float(np.sum(w * per_day))
    lag = np.abs(np.subtract.outer(np.arange(len(w)), np.arange(len(w))))
    sd = model["sigma"] * float(np.sqrt(w @ (model["rho"] ** lag) @ w))
    projected = to_date + rest
    return {"actual_to_date": to_date, "forecast_rest": rest, "projected": projected,
            "lower": projected - Z80 * sd, "upper": projected + Z80 * sd, "sd": sd}


def remaining_days(now: pd.Timestamp, period_end: pd.Timestamp) -> pd.Series:
    """Share of each local day from ``now`` to ``period_end`` still to come (the rest of today, then whole days)."""
    now = pd.Timestamp(now).tz_convert("Asia/Shanghai")
    today = now.normalize()
    days = pd.date_range(today, period_end, freq="D", inclusive="left")
    share = np.ones(len(days))
    if len(days):
        share[0] = 1.0 - (now - today) / pd.Timedelta(days=1)
    out = pd.Series(share, index=days)
    return out[out > 0]
