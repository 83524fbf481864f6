"""Physical models behind the demo-park simulators.

Pure, vectorised functions in the style of pvlib: numpy arrays or pandas objects in,
numpy arrays or pandas objects out, no hidden state. Randomness enters only through
the ``innovations`` / ``z`` arguments, which the caller draws from a seeded generator
(see :mod:`lingtan_tools.simulate.models`), so every function here is deterministic and can be
checked against hand-computed values (tests/test_simulate_physics.py).

Units are given in square brackets. Rates are in the canonical rate unit of a carrier
(kW, m3/h, t/h, GJ/h, L/h; see :mod:`lingtan.park.carriers`); counters in the matching
canonical counter unit (kWh, m3, t, GJ, L).

This module holds the weather-driven models (noise, PV, wind, shift loads); conversion
plants, storage, grid exchange and counters live in :mod:`lingtan_tools.simulate.plants` and are
re-exported here.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pvlib
from scipy.signal import lfilter
from scipy.special import gamma, ndtr

from lingtan.workdays import is_workday  # noqa: F401  (re-exported: the loads follow it)
from lingtan_tools.simulate.plants import (  # noqa: F401  (re-exported: physics is the one place to look)
    DIESEL_NCV_KWH_PER_L,
    FLAT,
    GJ_PER_KWH,
    JIANGSU_TOU,
    NCV_NATURAL_GAS,
    PEAK,
    STEAM_ENTHALPY_RISE,
    VALLEY,
    boiler_fuel,
    chp_fuel,
    chp_heat,
    genset_fuel,
    genset_test_run,
    grid_exchange,
    integrate_rate,
    storage_dispatch,
    tou_period,
    wrap_counter,
)

ArrayLike = np.ndarray | pd.Series | float

# --------------------------------------------------------------------------- noise


def ar1_coefficient(dt_s: float, tau_s: float) -> float:
    """Lag-one coefficient of an AR(1) process sampled every ``dt_s`` with time constant ``tau_s``.

    Parameters
    ----------
    dt_s : float
        Sampling step [s].
    tau_s : float
        Correlation time (e-folding time of the autocorrelation) [s].

    Returns
    -------
    float
        :math:`\\phi = e^{-\\Delta t / \\tau}`, in [0, 1).

    Notes
    -----
    This is the exact discretisation of an Ornstein-Uhlenbeck process, so the
    statistics of the simulated noise do not depend on the tick length.
    """
    if dt_s < 0 or tau_s <= 0:
        raise ValueError(f"need dt_s >= 0 and tau_s > 0, got {dt_s}, {tau_s}")
    return math.exp(-dt_s / tau_s)


def ar1(innovations: np.ndarray, phi: float, x0: float = 0.0) -> np.ndarray:
    """AR(1) recursion :math:`x_k = \\phi x_{k-1} + e_k` with :math:`x_{-1} = x_0`.

    Parameters
    ----------
    innovations : numpy.ndarray
        Innovations :math:`e_k` [-]. For a stationary standard-normal process draw them
        as :math:`\\sqrt{1-\\phi^2}\\,N(0, 1)`.
    phi : float
        Lag-one coefficient [-], see :func:`ar1_coefficient`.
    x0 : float, default 0
        State before the first sample [-].

    Returns
    -------
    numpy.ndarray
        The process :math:`x_0 \\ldots x_{n-1}` (same length as ``innovations``).
    """
    e = np.asarray(innovations, dtype=float)
    if e.size == 0:
        return e.copy()
    out, _ = lfilter([1.0], [1.0, -phi], e, zi=[phi * x0])
    return np.asarray(out)


# --------------------------------------------------------------------------- photovoltaics


def clearsky_irradiance(
    times: pd.DatetimeIndex,
    latitude: float,
    longitude: float,
    altitude: float = 0.0,
    model: str = "ineichen",
) -> pd.DataFrame:
    """Clear-sky global, direct normal and diffuse irradiance at a site.

    Parameters
    ----------
    times : pandas.DatetimeIndex
        Time-zone aware timestamps.
    latitude, longitude : float
        Site position [degrees], north and east positive.
    altitude : float, default 0
        Site altitude [m].
    model : {'ineichen', 'haurwitz'}
        'ineichen' (Ineichen and Perez 2002) uses the Linke turbidity climatology that
        pvlib ships in ``pvlib/data/LinkeTurbidities.h5`` and works offline.
        'haurwitz' needs no data file; its GHI is split into DNI and DHI with the Erbs
        model.

    Returns
    -------
    pandas.DataFrame
        Columns ``ghi``, ``dni``, ``dhi`` [W/m2] and ``apparent_zenith``, ``azimuth`` [degrees].

    References
    ----------
    .. [1] P. Ineichen and R. Perez, "A new airmass independent formulation for the Linke
       turbidity coefficient", Solar Energy 73(3), 151-157, 2002.
    .. [2] B. Haurwitz, "Insolation in relation to cloudiness and cloud density",
       Journal of Meteorology 2, 154-166, 1945.
    .. [3] D. G. Erbs, S. A. Klein and J. A. Duffie, "Estimation of the diffuse radiation
       fraction for hourly, daily and monthly-average global radiation", Solar Energy
       28(4), 293-302, 1982.
    """
    loc = pvlib.location.Location(latitude, longitude, altitude=altitude)
    solpos = loc.get_solarposition(times)
    if model == "ineichen":
        cs = loc.get_clearsky(times, model="ineichen", solar_position=solpos)
    elif model == "haurwitz":
        ghi = pvlib.clearsky.haurwitz(solpos["apparent_zenith"])["ghi"]
        split = pvlib.irradiance.erbs(ghi, solpos["zenith"], times)
        cs = pd.DataFrame({"ghi": ghi, "dni": split["dni"], "dhi": split["dhi"]}, index=times)
    else:
        raise ValueError(f"unknown clear-sky model {model!r}; use 'ineichen' or 'haurwitz'")
    out = cs[["ghi", "dni", "dhi"]].fillna(0.0).clip(lower=0.0)
    out["apparent_zenith"] = solpos["apparent_zenith"]
    out["azimuth"] = solpos["azimuth"]
    return out


def poa_global(
    surface_tilt: float,
    surface_azimuth: float,
    solar_zenith: ArrayLike,
    solar_azimuth: ArrayLike,
    dni: ArrayLike,
    ghi: ArrayLike,
    dhi: ArrayLike,
    albedo: float = 0.2,
) -> np.ndarray:
    """Global irradiance on a tilted plane, isotropic-sky transposition.

    Parameters
    ----------
    surface_tilt : float
        Panel tilt from horizontal [degrees].
    surface_azimuth : float
        Panel azimuth [degrees], 180 = facing south.
    solar_zenith, solar_azimuth : array-like
        Sun position [degrees].
    dni, ghi, dhi : array-like
        Direct normal, global horizontal and diffuse horizontal irradiance [W/m2].
    albedo : float, default 0.2
        Ground reflectance [-].

    Returns
    -------
    numpy.ndarray
        Plane-of-array global irradiance [W/m2], >= 0.

    Notes
    -----
    :math:`E_{poa} = DNI \\cos\\theta + DHI (1+\\cos\\beta)/2 + GHI\\,\\rho (1-\\cos\\beta)/2`
    with :math:`\\theta` the angle of incidence, :math:`\\beta` the tilt (Liu and Jordan 1963).

    References
    ----------
    .. [1] B. Y. H. Liu and R. C. Jordan, "The long-term average performance of
       flat-plate solar-energy collectors", Solar Energy 7(2), 53-74, 1963.
    """
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt, surface_azimuth, solar_zenith, solar_azimuth, dni, ghi, dhi, albedo=albedo, model="isotropic"
    )["poa_global"]
    return np.clip(np.nan_to_num(np.asarray(poa, dtype=float)), 0.0, None)


def clearness_index(z: ArrayLike, mean: float = 0.75, std: float = 0.2, lower: float = 0.1, upper: float = 1.0) -> np.ndarray:
    """Cloud attenuation factor from a standard-normal process, bounded to [lower, upper].

    Parameters
    ----------
    z : array-like
        Standard-normal noise (an AR(1) process for persistent clouds) [-].
    mean, std : float
        Mean and spread of the clear-sky index before clipping [-].
    lower, upper : float
        Bounds [-]; 0.1 is an overcast sky, 1 a clear sky.

    Returns
    -------
    numpy.ndarray
        :math:`k_c = \\mathrm{clip}(\\mu + \\sigma z, lower, upper)`.
    """
    return np.clip(mean + std * np.asarray(z, dtype=float), lower, upper)


def pv_power(poa: ArrayLike, capacity: float, derate: float = 0.85, clearness: ArrayLike = 1.0) -> np.ndarray:
    """AC output of a PV plant from plane-of-array irradiance (PVWatts-style linear model).

    Parameters
    ----------
    poa : array-like
        Clear-sky plane-of-array irradiance [W/m2].
    capacity : float
        Rated (STC) power [kW].
    derate : float, default 0.85
        System derate: temperature, soiling, wiring, inverter losses [-].
    clearness : array-like, default 1
        Cloud attenuation factor, see :func:`clearness_index` [-].

    Returns
    -------
    numpy.ndarray
        :math:`P = C \\cdot E_{poa} k_c / 1000 \\cdot d`, clipped to [0, C] [kW].

    References
    ----------
    .. [1] A. P. Dobos, "PVWatts Version 5 Manual", NREL/TP-6A20-62641, 2014.
    """
    p = capacity * np.asarray(poa, dtype=float) * np.asarray(clearness, dtype=float) / 1000.0 * derate
    return np.clip(p, 0.0, capacity)


# --------------------------------------------------------------------------- wind


def weibull_wind_speed(z: ArrayLike, mean_speed: float = 6.0, shape: float = 2.0) -> np.ndarray:
    """Map a standard-normal process onto Weibull-distributed wind speeds.

    Parameters
    ----------
    z : array-like
        Standard-normal noise, usually a slow AR(1) process [-].
    mean_speed : float, default 6
        Mean wind speed at hub height [m/s].
    shape : float, default 2
        Weibull shape k [-]; 2 is the Rayleigh distribution typical of inland sites.

    Returns
    -------
    numpy.ndarray
        :math:`v = \\lambda (-\\ln(1 - \\Phi(z)))^{1/k}` with
        :math:`\\lambda = \\bar v / \\Gamma(1 + 1/k)` [m/s].

    Notes
    -----
    The probability-integral transform keeps the time correlation of ``z`` and gives
    exactly Weibull marginals; ``z = 0`` maps to the median speed
    :math:`\\lambda (\\ln 2)^{1/k}`.
    """
    u = np.clip(ndtr(np.asarray(z, dtype=float)), 0.0, 1.0 - 1e-12)
    scale = mean_speed / gamma(1.0 + 1.0 / shape)
    return scale * (-np.log1p(-u)) ** (1.0 / shape)


def wind_power(speed: ArrayLike, capacity: float, cut_in: float = 3.0, rated: float = 12.0, cut_out: float = 25.0) -> np.ndarray:
    """Turbine output from a cubic power curve.

    Parameters
    ----------
    speed : array-like
        Hub-height wind speed [m/s].
    capacity : float
        Rated power [kW].
    cut_in, rated, cut_out : float
        Cut-in, rated and cut-out wind speeds [m/s].

    Returns
    -------
    numpy.ndarray
        0 below ``cut_in`` and from ``cut_out`` on; :math:`C (v^3 - v_{ci}^3)/(v_r^3 - v_{ci}^3)`
        between cut-in and rated; ``capacity`` from rated up to cut-out [kW].
    """
    if not 0 <= cut_in < rated < cut_out:
        raise ValueError(f"need 0 <= cut_in < rated < cut_out, got {cut_in}, {rated}, {cut_out}")
    v = np.asarray(speed, dtype=float)
    ramp = capacity * (v**3 - cut_in**3) / (rated**3 - cut_in**3)
    return np.where(v < cut_in, 0.0, np.where(v < rated, ramp, np.where(v < cut_out, capacity, 0.0)))


# --------------------------------------------------------------------------- air temperature

#: the demo climate, made to resemble southern Jiangsu (Suzhou/Wuxi): annual mean ≈ 16.5 °C, January
#: ≈ 4 °C and July ≈ 29 °C, coldest around 20 January, a daily range of about 7–8 °C peaking
#: mid-afternoon. Simulation values chosen to look like the region's climate, not taken from a
#: reference climate table; do not use them as climate data (docs/simulator.md).
SOUTH_JIANGSU_CLIMATE = {"annual_mean": 16.5, "annual_amplitude": 12.5, "coldest_day": 20.0,
                         "diurnal_amplitude": 3.8, "warmest_hour": 14.5, "synoptic_std": 2.5}
#: periods [d] of the synoptic (weather-system) swings: passing fronts take 3 to 15 days
SYNOPTIC_PERIODS_D = (2.7, 4.3, 6.1, 9.7, 15.3)


def air_temperature(times: pd.DatetimeIndex, seed: int = 1, climate: dict[str, float] | None = None) -> np.ndarray:
    """Outdoor air temperature [°C]: season + day + weather systems, a deterministic function of time.

    .. math:: T = \\bar T - A_y \\cos(2\\pi (d - d_0) / 365.25) + A_d \\cos(2\\pi (h - h_0) / 24)
              + \\sum_k a_k \\sin(2\\pi t / P_k + \\varphi_k)

    ``d`` is the day of the year and ``h`` the local hour; the synoptic terms have the periods of
    :data:`SYNOPTIC_PERIODS_D`, equal amplitudes giving a standard deviation of
    ``synoptic_std`` [K], and phases drawn from ``seed``. Being a function of time alone, the same
    instant gives the same temperature whatever chunk it is computed in, so the loads that
    follow it and the weather feed that reports it agree.

    Parameters
    ----------
    times : pandas.DatetimeIndex
        Local (time-zone aware) timestamps.
    seed : int
        Seed of the synoptic phases.
    climate : dict, optional
        Overrides of :data:`SOUTH_JIANGSU_CLIMATE`.
    """
    c = {**SOUTH_JIANGSU_CLIMATE, **(climate or {})}
    doy = np.asarray(times.dayofyear - 1 + (times.hour + times.minute / 60.0) / 24.0, dtype=float)
    hour = np.asarray(times.hour + times.minute / 60.0 + times.second / 3600.0, dtype=float)
    days = np.asarray(times.as_unit("ns").asi8, dtype=float) / 86_400e9
    phases = np.random.default_rng([seed, 0x7E4D]).uniform(0.0, 2.0 * math.pi, len(SYNOPTIC_PERIODS_D))
    amplitude = c["synoptic_std"] * math.sqrt(2.0 / len(SYNOPTIC_PERIODS_D))  # each sine has variance a²/2
    synoptic = sum(amplitude * np.sin(2.0 * math.pi * days / p + ph) for p, ph in zip(SYNOPTIC_PERIODS_D, phases,
                                                                                       strict=True))
    return (c["annual_mean"] - c["annual_amplitude"] * np.cos(2.0 * math.pi * (doy - c["coldest_day"]) / 365.25)
            + c["diurnal_amplitude"] * np.cos(2.0 * math.pi * (hour - c["warmest_hour"]) / 24.0) + synoptic)


def temperature_factor(temperature: ArrayLike, cooling_gain: float = 0.0, cooling_base: float = 22.0,
                       heating_gain: float = 0.0, heating_base: float = 14.0) -> np.ndarray:
    """Multiplier of a load's demand for heating or cooling [-].

    ``1 + g_c·max(T − T_c, 0) + g_h·max(T_h − T, 0)``: a chiller or air-conditioned building
    takes ``cooling_gain`` [1/K] more per kelvin above ``cooling_base`` [°C], a heated one
    ``heating_gain`` [1/K] more per kelvin below ``heating_base`` [°C]. The bases sit inside the
    GB 50176 degree-day bases (18 °C / 26 °C) because internal gains and the building envelope
    shift where plant actually starts.
    """
    t = np.asarray(temperature, dtype=float)
    return 1.0 + cooling_gain * np.clip(t - cooling_base, 0.0, None) + heating_gain * np.clip(heating_base - t, 0.0, None)


# --------------------------------------------------------------------------- loads

_H = np.arange(25, dtype=float)
#: hour-of-day activity (0 = rest, 1 = full production) at knots 00:00 .. 24:00, interpolated linearly
SHIFT_PROFILES: dict[str, np.ndarray] = {
    "continuous": np.ones(25),
    # three 8-hour shifts, a short dip at each hand-over (00:00, 08:00, 16:00)
    "three_shift": np.array([0.85] + [1.0] * 7 + [0.85] + [1.0] * 7 + [0.85] + [1.0] * 7 + [0.85]),
    # 08:00-16:00 and 16:00-24:00
    "two_shift": np.array([0, 0, 0, 0, 0, 0, 0, 0.4, 1, 1, 1, 1, 0.85, 1, 1, 1, 0.85, 1, 1, 1, 1, 1, 1, 0.9, 0]),
    # one day shift 08:00-17:00 with a lunch break
    "day": np.array([0, 0, 0, 0, 0, 0, 0, 0.1, 1, 1, 1, 1, 0.6, 1, 1, 1, 1, 0.9, 0.1, 0, 0, 0, 0, 0, 0]),
    # offices and canteens 08:30-17:30
    "office": np.array([0, 0, 0, 0, 0, 0, 0, 0.2, 0.8, 1, 1, 1, 0.7, 0.9, 1, 1, 1, 0.8, 0.3, 0.15, 0.1, 0.05, 0, 0, 0]),
    # street lighting, dormitories, night-time EV charging 18:00-06:00
    "night": np.array([1, 1, 1, 1, 1, 1, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 1, 1, 1, 1, 1, 1]),
}
#: share of the workday activity left on weekends and public holidays
NON_WORKDAY_FACTOR: dict[str, float] = {
    "continuous": 0.95,
    "three_shift": 0.7,
    "two_shift": 0.4,
    "day": 0.3,
    "office": 0.15,
    "night": 1.0,  # lights and dormitories do not take weekends off
}


def shift_activity(hour: ArrayLike, shift: str) -> np.ndarray:
    """Hour-of-day activity of a shift pattern.

    Parameters
    ----------
    hour : array-like
        Local time of day as fractional hours [h], 0 <= hour < 24.
    shift : str
        One of ``continuous``, ``three_shift``, ``two_shift``, ``day``, ``office``, ``night``.

    Returns
    -------
    numpy.ndarray
        Activity in [0, 1], linearly interpolated between the hourly knots of
        :data:`SHIFT_PROFILES`.
    """
    try:
        knots = SHIFT_PROFILES[shift]
    except KeyError:
        raise ValueError(f"unknown shift {shift!r}; use one of {sorted(SHIFT_PROFILES)}") from None
    return np.interp(np.asarray(hour, dtype=float), _H, knots)


#: terms of the moving average behind :func:`production_variation` (φ^15 < 1 % at τ = 3 d)
VARIATION_TERMS = 15


def production_variation(times: pd.DatetimeIndex, seed: int, name: str, sigma: float = 0.06,
                         tau_days: float = 3.0) -> np.ndarray:
    """Day-to-day multiplier of a load's production activity [-]: orders, product mix, maintenance.

    Each local day ``d`` has a level :math:`v_d = \\sum_{j<J} \varphi^j \varepsilon_{d-j} /
    \\sqrt{\\sum_j \varphi^{2j}}` with :math:`\varphi = e^{-1/\tau}` and standard-normal
    :math:`\varepsilon_d` drawn from ``(seed, name, d)``: a unit-variance process whose
    day-to-day correlation is that of an AR(1) with correlation time ``tau_days``, and a function
    of the date alone, so that a backfilled history and the live simulator agree on every day.
    Between the days' noons the level is interpolated linearly (no jump at midnight). The result is
    ``1 + sigma * v``, clipped to [0.5, 1.5].

    Parameters
    ----------
    times : pandas.DatetimeIndex
        Local (time-zone aware) timestamps.
    seed : int
        Seed of the simulation.
    name : str
        What varies (a meter id, or ``"park"`` for the swing all enterprises share).
    sigma : float, default 0.06
        Standard deviation of the daily level [-]; 0 gives ones.
    tau_days : float, default 3.0
        Correlation time [d].
    """
    n = len(times)
    if sigma == 0.0 or n == 0:
        return np.ones(n)
    wall_days = np.asarray(times.tz_localize(None).as_unit("ns").asi8, dtype=float) / 86_400e9 - 0.5  # 0 at a noon
    day0 = np.floor(wall_days).astype(np.int64)
    frac = wall_days - day0
    first, last = int(day0.min()) - VARIATION_TERMS + 1, int(day0.max()) + 1
    key = zlib.crc32(name.encode())
    eps = np.array([np.random.default_rng([seed & 0xFFFFFFFF, key, d & 0xFFFFFFFF]).standard_normal()
                    for d in range(first, last + 1)])
    phi = math.exp(-1.0 / tau_days)
    weights = phi ** np.arange(VARIATION_TERMS)
    levels = np.convolve(eps, weights, mode="valid") / math.sqrt(float(np.sum(weights ** 2)))  # days first+J-1 .. last
    at = day0 - (first + VARIATION_TERMS - 1)
    level = levels[at] * (1.0 - frac) + levels[at + 1] * frac
    return np.clip(1.0 + sigma * level, 0.5, 1.5)


def load_power(
    times: pd.DatetimeIndex,
    capacity: float,
    base: float = 0.3,
    shift: str = "continuous",
    peak: float = 0.9,
    noise: ArrayLike = 0.0,
    non_workday_factor: float | None = None,
    variation: ArrayLike = 1.0,
) -> np.ndarray:
    """Demand of a production line, building or utility from its shift pattern.

    Parameters
    ----------
    times : pandas.DatetimeIndex
        Local (time-zone aware) timestamps.
    capacity : float
        Rated demand [canonical rate unit of the carrier, e.g. kW or m3/h].
    base : float, default 0.3
        Demand at rest as a fraction of capacity [-].
    shift : str, default 'continuous'
        Shift pattern, see :func:`shift_activity`.
    peak : float, default 0.9
        Demand at full activity as a fraction of capacity [-].
    noise : array-like, default 0
        Relative fluctuation (e.g. 0.03 x a standard-normal AR(1) process) [-].
    non_workday_factor : float, optional
        Activity left on weekends and public holidays; default
        :data:`NON_WORKDAY_FACTOR` of the shift.
    variation : array-like, default 1
        Day-to-day multiplier of the activity, see :func:`production_variation` [-].

    Returns
    -------
    numpy.ndarray
        :math:`C \\cdot \\mathrm{clip}((b + (p - b)\\,a(h)\\,f_d\\,v)(1 + n), 0, 1)` where
        :math:`a(h)` is the shift activity, :math:`f_d` is 1 on working days
        (including make-up workdays) and ``non_workday_factor`` otherwise, and :math:`v` the
        ``variation`` [same unit as capacity].
    """
    hour = times.hour + times.minute / 60.0 + times.second / 3600.0
    activity = shift_activity(np.asarray(hour), shift)
    factor = NON_WORKDAY_FACTOR[shift] if non_workday_factor is None else non_workday_factor
    day = np.where(is_workday(times), 1.0, factor)
    level = (base + (peak - base) * activity * day * np.asarray(variation, dtype=float)) * (1.0 + np.asarray(noise, dtype=float))
    return capacity * np.clip(level, 0.0, 1.0)
