"""From a park model's ``simulation`` blocks to rate time series, chunk by chunk.

Each simulated meter has one or more *channels*: the rate it measures, in the canonical
rate unit of its carrier. Most meters have one channel, ``main``; a ``grid`` meter has
``import`` and ``export`` and a ``storage`` meter ``charge`` and ``discharge`` (picked by
the points' electricity roles). Counter points integrate their channel.

Coupling rule (documented in docs/simulator.md): meters of model ``boiler``, ``chp`` or
``genset`` in the same production unit belong to one plant when their ids are equal
after removing a trailing ``-gen``, ``-gas``, ``-steam``, ``-heat``, ``-fuel``, ``-elec``
or ``-power`` (``m-boiler1-gas`` + ``m-boiler1-steam`` -> ``m-boiler1``; ``m-chp-gen`` +
``m-chp-gas`` + ``m-chp-heat`` -> ``m-chp``; ``m-genset`` + ``m-genset-fuel`` ->
``m-genset``). Inside a plant the output meter drives and the others follow by physics:

* boiler: steam (or heat) demand is a load; gas = steam x enthalpy_rise / (NCV x efficiency)
* chp: electrical output is a load; gas = P / (eta_el x NCV); heat = gas x NCV x eta_th
* genset: output is capacity x test_load during the weekly test run; diesel = P / (eta x NCV)

Parameters are read from every meter of the plant (later meters override earlier ones).

Randomness: every meter draws from its own generator seeded with ``(seed, crc32(meter id))``,
and park-wide weather (clouds, wind) from ``(seed, crc32("weather"))``, so values do not
depend on the order of meters in the file.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lingtan.park.carriers import GENERATION_ROLES, Carrier, ElectricityRole
from lingtan.park.model import Meter, Park
from lingtan_tools.simulate import physics

ChannelKey = tuple[str, str]  # (meter id, channel)

PLANT_SUFFIX = re.compile(r"-(gen|gas|steam|heat|fuel|elec|power)$")
ROLE_CHANNEL = {
    ElectricityRole.grid_import: "import",
    ElectricityRole.grid_export: "export",
    ElectricityRole.storage_charge: "charge",
    ElectricityRole.storage_discharge: "discharge",
}
COUPLED_MODELS = frozenset({"boiler", "chp", "genset"})
#: standard deviation of a load's day-to-day production level (its own orders and product mix) [-],
#: and of the swing every enterprise of the park shares (the season's order book) [-]; together
#: they give the park's previous-week persistence the 10-17 % day-ahead error seen in real loads
#: (docs/simulator.md "Day-to-day variation")
DAY_VARIATION = 0.10
PARK_DAY_VARIATION = 0.07
#: hour-scale fluctuation of a load (batches, machines cycling) [-] and its correlation time [s]
HOUR_NOISE = 0.05
HOUR_NOISE_TAU_S = 5400.0


def stable_seed(seed: int, name: str) -> np.random.SeedSequence:
    """Seed sequence for a named stream, independent of iteration order."""
    return np.random.SeedSequence([seed, zlib.crc32(name.encode())])


def plant_key(meter_id: str) -> str:
    """Plant a coupled meter belongs to: its id without a trailing role suffix."""
    return PLANT_SUFFIX.sub("", meter_id)


def channel_of(meter: Meter, role: ElectricityRole | None) -> str:
    """Channel a point of ``meter`` reads: by role for grid and storage meters, else ``main``."""
    if meter.simulation is not None and meter.simulation.model in ("grid", "storage") and role in ROLE_CHANNEL:
        return ROLE_CHANNEL[role]
    return "main"


def _f(params: dict[str, float | str], name: str, default: float) -> float:
    return float(params.get(name, default))


def _s(params: dict[str, float | str], name: str, default: str) -> str:
    return str(params.get(name, default))


@dataclass
class NoiseStream:
    """A stationary standard-normal AR(1) process drawn chunk by chunk."""

    rng: np.random.Generator
    tau_s: float
    state: float = field(init=False)

    def __post_init__(self) -> None:
        self.state = float(self.rng.standard_normal())

    def draw(self, n: int, dt_s: float) -> np.ndarray:
        phi = physics.ar1_coefficient(dt_s, self.tau_s)
        x = physics.ar1(self.rng.standard_normal(n) * np.sqrt(1.0 - phi * phi), phi, self.state)
        if n:
            self.state = float(x[-1])
        return x


@dataclass
class _Plant:
    model: str
    meters: list[Meter]
    params: dict[str, float | str]

    def by_carrier(self, *carriers: Carrier) -> Meter | None:
        return next((m for m in self.meters if m.carrier in carriers), None)


class ParkRates:
    """Generates the rate of every channel of every simulated meter, chunk after chunk.

    Call :meth:`next_chunk` with consecutive, equally spaced local timestamps; AR(1)
    states and the battery's state of charge carry over between chunks.
    """

    def __init__(self, park: Park, *, seed: int, step_s: float, clearsky_model: str = "ineichen") -> None:
        self.park = park
        self.seed = seed
        self.step_s = step_s
        self.clearsky_model = clearsky_model
        self.meters: list[Meter] = [m for e in park.enterprises for u in e.units for m in u.meters]
        self.unit_of: dict[str, str] = {m.id: u.id for e in park.enterprises for u in e.units for m in u.meters}
        self.channels: list[ChannelKey] = []
        for m in self.meters:
            for ch in dict.fromkeys(channel_of(m, p.role) for p in m.points):
                self.channels.append((m.id, ch))
        self._noise: dict[str, NoiseStream] = {}
        weather = np.random.default_rng(stable_seed(seed, "weather"))
        self._clouds = NoiseStream(weather, tau_s=1200.0)
        self._wind = NoiseStream(weather, tau_s=3600.0)
        self._soc: dict[str, float] = {}
        self._temperature: np.ndarray = np.zeros(0)
        self._plants = self._group_plants()
        # sub-meters (``parent``): a parent reads its own simulated use plus its children, deepest first
        self.children: dict[str, list[Meter]] = defaultdict(list)
        for m in self.meters:
            if m.parent is not None:
                self.children[m.parent].append(m)
        by_id = {m.id: m for m in self.meters}

        def depth(m: Meter) -> int:
            n = 0
            while m.parent is not None and n < len(by_id):
                m, n = by_id[m.parent], n + 1
            return n

        self._parents_bottom_up = sorted((by_id[pid] for pid in self.children), key=depth, reverse=True)

    # ------------------------------------------------------------------ set-up

    def _group_plants(self) -> list[_Plant]:
        groups: dict[tuple[str, str, str], list[Meter]] = defaultdict(list)
        for m in self.meters:
            if m.simulation is not None and m.simulation.model in COUPLED_MODELS:
                groups[(self.unit_of[m.id], m.simulation.model, plant_key(m.id))].append(m)
        plants = []
        for (_unit, model, _key), meters in groups.items():
            params: dict[str, float | str] = {}
            for m in meters:
                assert m.simulation is not None
                params.update(m.simulation.params)
            plants.append(_Plant(model, meters, params))
        return plants

    def noise(self, meter_id: str, tau_s: float = 300.0) -> NoiseStream:
        if meter_id not in self._noise:
            self._noise[meter_id] = NoiseStream(np.random.default_rng(stable_seed(self.seed, meter_id)), tau_s)
        return self._noise[meter_id]

    # ------------------------------------------------------------------ generation

    def next_chunk(self, times: pd.DatetimeIndex) -> dict[ChannelKey, np.ndarray]:
        """Rates [canonical rate unit] of every channel at ``times`` (local, tz-aware)."""
        n = len(times)
        out: dict[ChannelKey, np.ndarray] = {key: np.zeros(n) for key in self.channels}
        weather = self._weather(times)
        self._temperature = weather["air_temperature"]  # the loads of this chunk follow it (_load)
        coupled = {m.id for p in self._plants for m in p.meters}
        for m in self.meters:
            sim = m.simulation
            if sim is None or m.id in coupled or sim.model in ("grid", "storage"):
                continue
            out[(m.id, "main")] = self._single(m, times, weather)
        for plant in self._plants:
            out.update(self._plant(plant, times, out))
        for m in self.meters:
            if m.simulation is not None and m.simulation.model == "storage":
                out.update(self._storage(m, times, weather))
        for m in self._parents_bottom_up:
            if (m.id, "main") in out and m.id not in coupled:  # a plant's output meter already follows its children
                out[(m.id, "main")] = out[(m.id, "main")] + self._children_rate(m.id, out, n)
        for m in self.meters:
            if m.simulation is not None and m.simulation.model == "grid":
                out.update(self._grid(m, times, out))
        return out

    def _weather(self, times: pd.DatetimeIndex) -> dict[str, np.ndarray | pd.DataFrame]:
        n = len(times)
        loc = self.park.park.location
        try:
            cs = physics.clearsky_irradiance(times, loc.latitude, loc.longitude, loc.altitude, model=self.clearsky_model)
        except (OSError, ImportError, KeyError):  # Linke turbidity file unreadable: fall back
            self.clearsky_model = "haurwitz"
            cs = physics.clearsky_irradiance(times, loc.latitude, loc.longitude, loc.altitude, model="haurwitz")
        return {
            "clearsky": cs,
            "clearness": physics.clearness_index(self._clouds.draw(n, self.step_s)),
            "wind_z": self._wind.draw(n, self.step_s),
            "air_temperature": physics.air_temperature(times, self.seed),
        }

    def _single(self, m: Meter, times: pd.DatetimeIndex, weather: dict) -> np.ndarray:
        sim = m.simulation
        assert sim is not None
        p, cap, n = sim.params, sim.capacity, len(times)
        if sim.model == "pv":
            cs = weather["clearsky"]
            poa = physics.poa_global(
                _f(p, "tilt", 20.0), _f(p, "azimuth", 180.0), cs["apparent_zenith"], cs["azimuth"], cs["dni"], cs["ghi"], cs["dhi"]
            )
            local = weather["clearness"] * (1.0 + 0.02 * self.noise(m.id, 120.0).draw(n, self.step_s))
            return physics.pv_power(poa, cap, _f(p, "derate", 0.85), np.clip(local, 0.1, 1.0))
        if sim.model == "wind":
            speed = physics.weibull_wind_speed(weather["wind_z"], _f(p, "mean_speed", 6.0), _f(p, "weibull_k", 2.0))
            speed = speed * (1.0 + 0.05 * self.noise(m.id, 60.0).draw(n, self.step_s))
            return physics.wind_power(speed, cap, _f(p, "cut_in", 3.0), _f(p, "rated", 12.0), _f(p, "cut_out", 25.0))
        if sim.model == "constant":
            return cap * _f(p, "level", 1.0) * (1.0 + 0.01 * self.noise(m.id).draw(n, self.step_s))
        return self._load(m.id, cap, p, times)  # load, and any model without a plant partner

    def _load(self, meter_id: str, capacity: float, p: dict[str, float | str], times: pd.DatetimeIndex, base: float = 0.3) -> np.ndarray:
        nwf = p.get("non_workday_factor")
        demand = physics.load_power(
            times,
            capacity,
            base=_f(p, "base", base),
            shift=_s(p, "shift", "continuous"),
            peak=_f(p, "peak", 0.9),
            # minute-scale fluctuation, plus the hour-scale one of batches and machines cycling
            noise=_f(p, "noise", 0.03) * self.noise(meter_id).draw(len(times), self.step_s)
            + _f(p, "hour_noise", HOUR_NOISE) * self.noise(meter_id + "#hour", HOUR_NOISE_TAU_S).draw(len(times), self.step_s),
            non_workday_factor=None if nwf is None else float(nwf),
            variation=self._variation(meter_id, times, p),
        )
        if "cooling_gain" not in p and "heating_gain" not in p:
            return demand
        factor = physics.temperature_factor(self._temperature, _f(p, "cooling_gain", 0.0), _f(p, "cooling_base", 22.0),
                                            _f(p, "heating_gain", 0.0), _f(p, "heating_base", 14.0))
        return np.minimum(demand * factor, capacity)  # a plant cannot take more than its rating

    def _variation(self, meter_id: str, times: pd.DatetimeIndex, p: dict[str, float | str]) -> np.ndarray:
        """Day-to-day production swing: the meter's own (``day_variation``, default
        :data:`DAY_VARIATION`) times the one the whole park shares (:data:`PARK_DAY_VARIATION`)."""
        own = physics.production_variation(times, self.seed, meter_id, _f(p, "day_variation", DAY_VARIATION))
        if "day_variation" in p and float(p["day_variation"]) == 0.0:
            return own  # a load declared steady stays steady
        return own * physics.production_variation(times, self.seed, "park", PARK_DAY_VARIATION)

    def _children_rate(self, meter_id: str, rates: dict[ChannelKey, np.ndarray], n: int) -> np.ndarray:
        """Sum of the ``main`` rates of a meter's sub-meters (zero without any)."""
        total = np.zeros(n)
        for child in self.children.get(meter_id, []):
            if (child.id, "main") in rates:
                total = total + rates[(child.id, "main")]
        return total

    def _plant(self, plant: _Plant, times: pd.DatetimeIndex,
               rates: dict[ChannelKey, np.ndarray]) -> dict[ChannelKey, np.ndarray]:
        p, out = plant.params, {}
        ncv = _f(p, "ncv", physics.NCV_NATURAL_GAS)
        gas = plant.by_carrier(Carrier.natural_gas)
        if plant.model == "boiler":
            steam = plant.by_carrier(Carrier.steam, Carrier.heat)
            if steam is None:  # a boiler with only its gas meter: the gas demand itself is the load
                return {(m.id, "main"): self._load(m.id, _cap(m), p, times, 0.5) for m in plant.meters}
            # the boiler makes what its sub-meters take, plus its own load (blow-down, own use)
            out_rate = self._load(steam.id, _cap(steam), p, times, 0.5) + self._children_rate(steam.id, rates, len(times))
            out[(steam.id, "main")] = out_rate
            rise = _f(p, "enthalpy_rise", physics.STEAM_ENTHALPY_RISE)
            steam_t = out_rate if steam.carrier is Carrier.steam else out_rate / rise  # a heat meter reads GJ/h
            fuel = physics.boiler_fuel(steam_t, _f(p, "efficiency", 0.9), rise, ncv)
            for m in plant.meters:
                if m is not steam:
                    out[(m.id, "main")] = fuel if m.carrier is Carrier.natural_gas else steam_t * rise
            return out
        gen = plant.by_carrier(Carrier.electricity)
        if plant.model == "chp":
            if gen is None:
                return {(m.id, "main"): self._load(m.id, _cap(m), p, times, 0.6) for m in plant.meters}
            power = self._load(gen.id, _cap(gen), p, times, 0.6)
            fuel = physics.chp_fuel(power, _f(p, "electrical_efficiency", 0.38), ncv)
            heat = physics.chp_heat(fuel, _f(p, "thermal_efficiency", 0.42), ncv)
            for m in plant.meters:
                out[(m.id, "main")] = power if m is gen else fuel if m is gas else heat
            return out
        # genset
        running = physics.genset_test_run(
            times, int(_f(p, "test_weekday", 1)), int(_f(p, "test_hour", 10)), int(_f(p, "test_minute", 0)), _f(p, "test_minutes", 30.0)
        )
        level = np.where(running, _f(p, "test_load", 0.6), 0.0)
        if gen is None:
            return {(m.id, "main"): level * _cap(m) for m in plant.meters}
        power = level * _cap(gen)
        fuel = physics.genset_fuel(power, _f(p, "electrical_efficiency", 0.37))
        for m in plant.meters:
            out[(m.id, "main")] = power if m is gen else fuel
        return out

    def _storage(self, m: Meter, times: pd.DatetimeIndex, weather: dict) -> dict[ChannelKey, np.ndarray]:
        sim = m.simulation
        assert sim is not None
        p = sim.params
        cap_kwh = _f(p, "capacity_kwh", 2.0 * sim.capacity)
        if m.id not in self._soc:
            rng = np.random.default_rng(stable_seed(self.seed, m.id + "#soc"))
            self._soc[m.id] = float(rng.uniform(0.3, 0.7))
        cs = weather["clearsky"]
        pv_fraction = np.clip(np.asarray(cs["ghi"]) / 1000.0 * weather["clearness"], 0.0, 1.0)
        hour = np.asarray(times.hour + times.minute / 60.0 + times.second / 3600.0)
        charge, discharge, soc = physics.storage_dispatch(
            hour, pv_fraction, sim.capacity, cap_kwh, self.step_s / 3600.0, self._soc[m.id], _f(p, "efficiency", 0.95)
        )
        if len(soc):
            self._soc[m.id] = float(soc[-1])
        return {(m.id, "charge"): charge, (m.id, "discharge"): discharge}

    def _grid(self, grid: Meter, times: pd.DatetimeIndex, rates: dict[ChannelKey, np.ndarray]) -> dict[ChannelKey, np.ndarray]:
        """Net = the load meters of the grid meter's unit - on-site generation + storage charging."""
        n = len(times)
        unit = self.unit_of[grid.id]
        loads = [
            m for m in self.meters
            if self.unit_of[m.id] == unit and m.carrier is Carrier.electricity
            and m.simulation is not None and m.simulation.model == "load"
        ]
        if loads:
            demand = sum((rates[(m.id, "main")] for m in loads), np.zeros(n))
        else:
            assert grid.simulation is not None
            demand = self._load(grid.id, grid.simulation.capacity, grid.simulation.params, times, 0.5)
        net = np.array(demand, dtype=float)
        for m in self.meters:
            if m.carrier is not Carrier.electricity or m.simulation is None:
                continue
            if any(pt.role in GENERATION_ROLES for pt in m.points):
                net -= rates[(m.id, "main")]
            elif m.simulation.model == "storage":
                net += rates[(m.id, "charge")] - rates[(m.id, "discharge")]
        imp, exp = physics.grid_exchange(net)
        return {(grid.id, "import"): imp, (grid.id, "export"): exp}


def _cap(m: Meter) -> float:
    assert m.simulation is not None
    return m.simulation.capacity
