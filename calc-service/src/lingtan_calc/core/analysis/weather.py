"""Degree days and the weather-normalised comparison of two periods.

Pure functions on pandas objects. The method is the degree-day regression of IPMVP
(EVO 10000-1:2022, Option C, "routine adjustments") and ASHRAE Guideline 14-2014 §5.3.2:
daily energy is regressed on the day's heating and cooling degree days (and a workday
indicator, since an industrial day's energy depends first on whether it is worked); the
current period is then brought to the base period's weather by the fitted degree-day terms.
The degree-day bases default to GB 50176-2016 §2.1 (HDD18, CDD26); a park states its own
in the park model (docs/park-model.md, "Weather").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: hours a day needs for its mean temperature to count [h]; a day with fewer is left out
#: (a mean of a few hours is biased towards the time of day they were taken)
MIN_HOURS_PER_DAY = 18
#: days the regression needs: a month of daily data gives the degree-day terms a chance
#: to stand out of the day-to-day noise
MIN_DAYS = 30
#: |t| a degree-day coefficient needs to be kept (≈ 95 % two-sided); a term below it is left out
MIN_T = 2.0
#: share of a period's days with a temperature for its degree days to be trusted
MIN_COVERAGE = 0.9


def daily_mean_temperature(hourly: pd.Series, tz: str = "Asia/Shanghai",
                           min_hours: int = MIN_HOURS_PER_DAY) -> pd.Series:
    """Daily mean air temperature [°C] from hourly (or finer) observations [°C].

    ``hourly`` is indexed by tz-aware time. Observations are first averaged per hour, then the
    hours per local day; a day with fewer than ``min_hours`` hours is left out (not filled).
    """
    if hourly.empty:
        return pd.Series(dtype=float, name="air_temperature")
    local = hourly.dropna().tz_convert(tz)
    per_hour = local.groupby(local.index.floor("h")).mean()
    days = per_hour.groupby(per_hour.index.normalize())
    mean, count = days.mean(), days.count()
    return mean[count >= min_hours].rename("air_temperature")


def degree_days(daily_mean: pd.Series, heating_base: float = 18.0, cooling_base: float = 26.0) -> pd.DataFrame:
    """Heating and cooling degree days of each day [K·d] from its mean temperature [°C].

    HDD = max(T_base,h − T_mean, 0), CDD = max(T_mean − T_base,c, 0), the daily-mean method of
    GB 50176-2016 §2.1 (HDD18, CDD26 by default).
    """
    if heating_base > cooling_base:
        raise ValueError(f"heating_base {heating_base} °C is above cooling_base {cooling_base} °C")
    t = daily_mean.astype(float)
    return pd.DataFrame({"hdd": (heating_base - t).clip(lower=0.0), "cdd": (t - cooling_base).clip(lower=0.0)},
                        index=daily_mean.index)


def fit_weather_model(daily_energy: pd.Series, days: pd.DataFrame, workday: pd.Series | None = None,
                      min_days: int = MIN_DAYS, min_t: float = MIN_T) -> dict[str, float | int | bool]:
    """Least-squares model of daily energy on degree days: E = a + w·workday + b_h·HDD + b_c·CDD.

    Parameters
    ----------
    daily_energy : pandas.Series
        Energy per day [tce or any unit], indexed by local day.
    days : pandas.DataFrame
        ``hdd`` and ``cdd`` per day [K·d] (:func:`degree_days`), same index.
    workday : pandas.Series of bool, optional
        Whether each day was a working day; without it the term is left out.

    Returns
    -------
    dict
        ``intercept``, ``per_workday``, ``per_hdd`` and ``per_cdd`` [unit per day, unit per K·d],
        ``r2``, ``cv_rmse`` (RMSE / mean, ASHRAE Guideline 14 §5.3.2.4), ``days`` and
        ``weather_dependent`` (whether any degree-day term was kept). A degree-day term is kept
        only with a positive coefficient whose |t| ≥ ``min_t`` (energy that falls as it gets
        colder or hotter is not a heating or cooling load, and a term within the noise would
        "normalise" by chance); dropped terms are 0.

    Raises ValueError with fewer than ``min_days`` days that have both energy and degree days.
    """
    frame = days[["hdd", "cdd"]].join(daily_energy.rename("energy"), how="inner")
    if workday is not None:
        frame = frame.join(workday.astype(float).rename("workday"), how="inner")
    frame = frame.dropna()
    if len(frame) < min_days:
        raise ValueError(f"{len(frame)} days with both energy and temperature; the weather model needs {min_days}")
    terms = [c for c in ("workday", "hdd", "cdd") if c in frame and frame[c].std() > 0]
    while True:
        coef, se, r2, rmse = _ols(frame, terms)
        weak = [c for c in ("hdd", "cdd") if c in terms and (coef[c] <= 0 or abs(coef[c]) < min_t * se[c])]
        if not weak:
            break
        terms.remove(min(weak, key=lambda c: coef[c] / se[c] if se[c] > 0 else 0.0))
    mean = float(frame["energy"].mean())
    return {"intercept": coef["const"], "per_workday": coef.get("workday", 0.0), "per_hdd": coef.get("hdd", 0.0),
            "per_cdd": coef.get("cdd", 0.0), "r2": r2, "cv_rmse": rmse / mean if mean else float("nan"),
            "days": int(len(frame)), "weather_dependent": any(c in terms for c in ("hdd", "cdd"))}


def _ols(frame: pd.DataFrame, terms: list[str]) -> tuple[dict[str, float], dict[str, float], float, float]:
    """Coefficients, their standard errors, R² and RMSE of ``energy`` on ``terms`` plus a constant."""
    x = np.column_stack([np.ones(len(frame))] + [frame[c].to_numpy(float) for c in terms])
    y = frame["energy"].to_numpy(float)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = max(len(y) - x.shape[1], 1)
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(x.T @ x)
    names = ["const", *terms]
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(resid @ resid) / sst if sst > 0 else 0.0
    return ({n: float(b) for n, b in zip(names, beta, strict=True)},
            {n: float(np.sqrt(max(v, 0.0))) for n, v in zip(names, np.diag(cov), strict=True)},
            r2, float(np.sqrt(float(resid @ resid) / len(y))))


def weather_normalised(energy_base: float, energy_current: float, base_days: pd.DataFrame,
                       current_days: pd.DataFrame, model: dict) -> dict[str, float]:
    """The current period's energy at the base period's weather [unit of the energies].

    ``*_days`` are the periods' daily degree days (:func:`degree_days`); ``model`` comes from
    :func:`fit_weather_model`. The weather effect is b_h·(HDD_c − HDD_b) + b_c·(CDD_c − CDD_b),
    with period totals [K·d]; ``normalised_current`` = E_c − effect, and its change to E_b is
    the change that the weather does not explain.
    """
    hdd_b, cdd_b = float(base_days["hdd"].sum()), float(base_days["cdd"].sum())
    hdd_c, cdd_c = float(current_days["hdd"].sum()), float(current_days["cdd"].sum())
    effect = model["per_hdd"] * (hdd_c - hdd_b) + model["per_cdd"] * (cdd_c - cdd_b)
    normalised = energy_current - effect
    return {"base_hdd": hdd_b, "base_cdd": cdd_b, "current_hdd": hdd_c, "current_cdd": cdd_c,
            "weather_effect": effect, "normalised_current": normalised, "normalised_change": normalised - energy_base,
            "normalised_change_ratio": (normalised - energy_base) / energy_base if energy_base else float("nan")}
