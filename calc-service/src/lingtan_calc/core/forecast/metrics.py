"""Forecast quality: MAE, RMSE, NRMSE, NMBE and skill against a reference forecast.

Pure functions on aligned pandas Series (actual and forecast on the same index); pairs where
either is missing are left out. The normalised figures divide by the mean of the actuals, as
ASHRAE Guideline 14-2014 §5.2.2.4 does for CV(RMSE) and NMBE; NREL BuildingsBench reports
NRMSE the same way. The bias here is forecast − actual (a positive NMBE over-forecasts),
with n in the denominator (no model degrees of freedom: these are out-of-sample errors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pairs(actual: pd.Series, forecast: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    both = pd.concat([actual.rename("a"), forecast.rename("f")], axis=1, join="inner").dropna()
    if both.empty:
        raise ValueError("no time at which both the actual and the forecast have a value")
    return both["a"].to_numpy(float), both["f"].to_numpy(float)


def mae(actual: pd.Series, forecast: pd.Series) -> float:
    """Mean absolute error [unit of the series]."""
    a, f = _pairs(actual, forecast)
    return float(np.mean(np.abs(f - a)))


def rmse(actual: pd.Series, forecast: pd.Series) -> float:
    """Root-mean-square error [unit of the series]."""
    a, f = _pairs(actual, forecast)
    return float(np.sqrt(np.mean((f - a) ** 2)))


def nrmse(actual: pd.Series, forecast: pd.Series) -> float:
    """RMSE / mean(actual) [-] (CV(RMSE)); NaN when the actuals average 0."""
    a, f = _pairs(actual, forecast)
    mean = float(np.mean(a))
    return float(np.sqrt(np.mean((f - a) ** 2)) / mean) if mean else float("nan")


def nmbe(actual: pd.Series, forecast: pd.Series) -> float:
    """Σ(forecast − actual) / (n · mean(actual)) [-]; NaN when the actuals average 0."""
    a, f = _pairs(actual, forecast)
    mean = float(np.mean(a))
    return float(np.sum(f - a) / (len(a) * mean)) if mean else float("nan")


def skill(actual: pd.Series, forecast: pd.Series, reference: pd.Series) -> float:
    """1 − RMSE(forecast) / RMSE(reference) [-], on the times all three have: > 0 beats the reference."""
    both = pd.concat([actual.rename("a"), forecast.rename("f"), reference.rename("r")], axis=1,
                     join="inner").dropna()
    if both.empty:
        raise ValueError("no time at which the actual, the forecast and the reference all have a value")
    ref = rmse(both["a"], both["r"])
    return 1.0 - rmse(both["a"], both["f"]) / ref if ref else float("nan")


def scores(actual: pd.Series, forecast: pd.Series, reference: pd.Series | None = None) -> dict[str, float]:
    """MAE, RMSE, NRMSE, NMBE (and skill against ``reference``) in one dict."""
    out = {"mae": mae(actual, forecast), "rmse": rmse(actual, forecast), "nrmse": nrmse(actual, forecast),
           "nmbe": nmbe(actual, forecast), "n": int(len(_pairs(actual, forecast)[0]))}
    if reference is not None:
        out["skill"] = skill(actual, forecast, reference)
    return out
