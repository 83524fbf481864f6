"""Conversion plants, battery storage, grid exchange and counters of the demo park.

Pure, vectorised functions like :mod:`lingtan_tools.simulate.physics` (which re-exports them):
arrays in, arrays out, units in square brackets, checked against hand-computed values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ArrayLike = np.ndarray | pd.Series | float

#: net calorific value of natural gas [GJ/m3]; GB/T 2589-2020 Annex A: 38 931 kJ/m3
NCV_NATURAL_GAS = 0.038931
#: enthalpy rise from feed water to saturated process steam [GJ/t] (~1.0 MPa steam from ~20 degC water)
STEAM_ENTHALPY_RISE = 2.7
#: net calorific value of diesel [kWh/L]: 42 652 kJ/kg (GB/T 2589-2020 Annex A) x 0.84 kg/L / 3600
DIESEL_NCV_KWH_PER_L = 42.652 * 0.84 / 3.6
#: kWh -> GJ
GJ_PER_KWH = 0.0036


# --------------------------------------------------------------------------- conversion plants


def boiler_fuel(steam: ArrayLike, efficiency: float, enthalpy_rise: float = STEAM_ENTHALPY_RISE, ncv: float = NCV_NATURAL_GAS) -> np.ndarray:
    """Natural gas burnt by a steam boiler.

    Parameters
    ----------
    steam : array-like
        Steam output [t/h].
    efficiency : float
        Boiler thermal efficiency on NCV [-].
    enthalpy_rise : float, default 2.7
        Enthalpy added per tonne of steam [GJ/t].
    ncv : float, default 0.038931
        Net calorific value of the gas [GJ/m3].

    Returns
    -------
    numpy.ndarray
        :math:`\\dot V = \\dot m\\,\\Delta h / (NCV\\,\\eta)` [m3/h].
    """
    return np.asarray(steam, dtype=float) * enthalpy_rise / (ncv * efficiency)


def chp_fuel(power: ArrayLike, electrical_efficiency: float, ncv: float = NCV_NATURAL_GAS) -> np.ndarray:
    """Natural gas burnt by a gas engine or turbine CHP unit.

    Parameters
    ----------
    power : array-like
        Electrical output [kW].
    electrical_efficiency : float
        Electrical efficiency on NCV [-].
    ncv : float, default 0.038931
        Net calorific value of the gas [GJ/m3].

    Returns
    -------
    numpy.ndarray
        :math:`\\dot V = 0.0036\\,P / (\\eta_{el} NCV)` [m3/h].
    """
    return np.asarray(power, dtype=float) * GJ_PER_KWH / (electrical_efficiency * ncv)


def chp_heat(fuel: ArrayLike, thermal_efficiency: float, ncv: float = NCV_NATURAL_GAS) -> np.ndarray:
    """Useful heat of a CHP unit.

    Parameters
    ----------
    fuel : array-like
        Gas burnt [m3/h].
    thermal_efficiency : float
        Heat-recovery efficiency on NCV [-].
    ncv : float, default 0.038931
        Net calorific value of the gas [GJ/m3].

    Returns
    -------
    numpy.ndarray
        :math:`\\dot Q = \\dot V\\,NCV\\,\\eta_{th}` [GJ/h].
    """
    return np.asarray(fuel, dtype=float) * ncv * thermal_efficiency


def genset_fuel(power: ArrayLike, electrical_efficiency: float = 0.37, ncv_kwh_per_l: float = DIESEL_NCV_KWH_PER_L) -> np.ndarray:
    """Diesel burnt by a standby generator.

    Parameters
    ----------
    power : array-like
        Electrical output [kW].
    electrical_efficiency : float, default 0.37
        Electrical efficiency on NCV [-].
    ncv_kwh_per_l : float
        Net calorific value of diesel [kWh/L], default 9.95.

    Returns
    -------
    numpy.ndarray
        :math:`\\dot V = P / (\\eta\\,NCV)` [L/h].
    """
    return np.asarray(power, dtype=float) / (electrical_efficiency * ncv_kwh_per_l)


def genset_test_run(times: pd.DatetimeIndex, weekday: int = 1, hour: int = 10, minute: int = 0, duration_min: float = 30.0) -> np.ndarray:
    """Whether a standby generator is in its weekly test run.

    Parameters
    ----------
    times : pandas.DatetimeIndex
        Local timestamps.
    weekday : int, default 1
        Day of the test run, Monday = 0 (default Tuesday).
    hour, minute : int
        Local start time of the run.
    duration_min : float, default 30
        Length of the run [min].

    Returns
    -------
    numpy.ndarray of bool
        True inside ``[start, start + duration)`` on the test day.
    """
    minutes = np.asarray(times.hour * 60 + times.minute + times.second / 60.0, dtype=float)
    start = hour * 60 + minute
    return (np.asarray(times.day_of_week) == weekday) & (minutes >= start) & (minutes < start + duration_min)


# --------------------------------------------------------------------------- storage and grid

#: time-of-use period per hour: classic Jiangsu schedule for large industrial users:
#: valley 00:00-08:00, peak 08:00-12:00 and 17:00-21:00, flat 12:00-17:00 and 21:00-24:00
VALLEY, FLAT, PEAK = 0, 1, 2
JIANGSU_TOU = np.array([VALLEY] * 8 + [PEAK] * 4 + [FLAT] * 5 + [PEAK] * 4 + [FLAT] * 3)


def tou_period(hour: ArrayLike) -> np.ndarray:
    """Time-of-use period (0 valley, 1 flat, 2 peak) of a local fractional hour, Jiangsu shape.

    References
    ----------
    .. [1] 江苏省物价局, 苏价工〔2012〕 销售电价峰谷时段 (peak 8-12 h and 17-21 h, valley 0-8 h).
    """
    return JIANGSU_TOU[np.floor(np.asarray(hour, dtype=float)).astype(int) % 24]


def storage_dispatch(
    hour: ArrayLike,
    pv_fraction: ArrayLike,
    power: float,
    capacity_kwh: float,
    dt_h: float,
    soc0: float,
    efficiency: float = 0.95,
    soc_min: float = 0.1,
    soc_max: float = 0.95,
    pv_threshold: float = 0.4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rule-based battery dispatch on a time-of-use tariff.

    Parameters
    ----------
    hour : array-like
        Local fractional hour of each step [h].
    pv_fraction : array-like
        Park PV output as a fraction of PV capacity at each step [-].
    power : float
        Rated charge/discharge power [kW].
    capacity_kwh : float
        Usable energy capacity [kWh].
    dt_h : float
        Step length [h]; each step holds its power for dt_h.
    soc0 : float
        State of charge before the first step [-].
    efficiency : float, default 0.95
        One-way efficiency (charge and discharge each) [-].
    soc_min, soc_max : float
        State-of-charge window [-].
    pv_threshold : float, default 0.4
        PV fraction above which the battery soaks up midday PV (12:00-14:00) [-].

    Returns
    -------
    charge, discharge : numpy.ndarray
        AC power into and out of the battery at each step [kW], both >= 0.
    soc : numpy.ndarray
        State of charge at the end of each step [-].

    Notes
    -----
    Charge at full power in the valley period and at ``power x pv_fraction`` from
    12:00 to 14:00 when PV is strong; discharge at full power in peak periods. Energy
    limits: :math:`P_{ch} \\le (s_{max} - s) E / (\\eta\\,\\Delta t)`,
    :math:`P_{dis} \\le (s - s_{min}) E \\eta / \\Delta t`.
    """
    h = np.asarray(hour, dtype=float)
    pv = np.broadcast_to(np.asarray(pv_fraction, dtype=float), h.shape)
    want_in, want_out = _dispatch_requests(h, pv, power, pv_threshold)
    return _apply_soc_limits(want_in, want_out, capacity_kwh, dt_h, soc0, efficiency, soc_min, soc_max)


def _dispatch_requests(h: np.ndarray, pv: np.ndarray, power: float, pv_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Charge and discharge power the tariff rules ask for at each step, before energy limits [kW].

    Full ``power`` in, in the valley period; ``power x pv`` in from 12:00 to 14:00 outside the
    valley when ``pv >= pv_threshold``; full ``power`` out in peak periods. ``h`` [h], ``pv`` [-].
    """
    period = tou_period(h)
    want_in = np.zeros_like(h)
    midday = (h >= 12.0) & (h < 14.0) & (pv >= pv_threshold)
    want_in[midday] = power * pv[midday]
    want_in[period == VALLEY] = power
    want_out = np.where(period == PEAK, power, 0.0)
    return want_in, want_out


def _apply_soc_limits(
    want_in: np.ndarray,
    want_out: np.ndarray,
    capacity_kwh: float,
    dt_h: float,
    soc0: float,
    efficiency: float,
    soc_min: float,
    soc_max: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step the state of charge through the requests, capped by the energy limits of :func:`storage_dispatch`.

    Returns charge and discharge [kW] and the state of charge at the end of each step [-]; a
    step that asks for charge does not discharge. Sequential, as each step starts from the last.
    """
    charge = np.zeros_like(want_in)
    discharge = np.zeros_like(want_in)
    soc = np.zeros_like(want_in)
    s = soc0
    for i in range(want_in.size):
        if want_in[i] > 0.0:
            charge[i] = min(want_in[i], max(0.0, (soc_max - s) * capacity_kwh / (efficiency * dt_h)))
            s += charge[i] * dt_h * efficiency / capacity_kwh
        elif want_out[i] > 0.0:
            discharge[i] = min(want_out[i], max(0.0, (s - soc_min) * capacity_kwh * efficiency / dt_h))
            s -= discharge[i] * dt_h / (efficiency * capacity_kwh)
        soc[i] = s
    return charge, discharge, soc


def grid_exchange(net: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Split a net demand into grid import and export.

    Parameters
    ----------
    net : array-like
        Park demand minus on-site generation [kW]; negative when the park exports.

    Returns
    -------
    import_, export : numpy.ndarray
        :math:`\\max(net, 0)` and :math:`\\max(-net, 0)` [kW].
    """
    n = np.asarray(net, dtype=float)
    return np.maximum(n, 0.0), np.maximum(-n, 0.0)


# --------------------------------------------------------------------------- counters


def integrate_rate(rate: ArrayLike, dt_h: float, initial: float = 0.0) -> np.ndarray:
    """Counter readings from a rate held constant over each step.

    Parameters
    ----------
    rate : array-like
        Rate at the start of each step, held until the next step [unit/h, or kW].
    dt_h : float
        Step length [h].
    initial : float, default 0
        Counter reading at the first step [unit, or kWh].

    Returns
    -------
    numpy.ndarray
        :math:`C_k = C_0 + \\sum_{j<k} r_j \\Delta t`: the reading at the start of each
        step, so :math:`C_{k+1} - C_k = r_k \\Delta t` exactly.
    """
    r = np.asarray(rate, dtype=float)
    return initial + np.concatenate(([0.0], np.cumsum(r[:-1] * dt_h)))


def wrap_counter(raw: ArrayLike, modulus: float) -> np.ndarray:
    """Raw counter reading after roll-over at ``modulus`` (a register width or a meter's ``rollover``).

    Parameters
    ----------
    raw : array-like
        Unwrapped raw reading [raw units], >= 0.
    modulus : float
        Roll-over modulus [raw units], e.g. 65536 for a uint16 register.

    Returns
    -------
    numpy.ndarray
        ``raw mod modulus``.
    """
    return np.mod(np.asarray(raw, dtype=float), modulus)
