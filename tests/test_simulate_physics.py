"""Physics, codec and engine of the demo-park simulators, against hand-computed values."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from lingtan.park import counters, load_park
from lingtan.park.index import iter_points
from lingtan.settings import DEMO_PARK
from lingtan_collectors.common import codec
from lingtan_tools.simulate import physics
from lingtan_tools.simulate.engine import Engine
from lingtan_tools.simulate.faults import FaultBook, FaultKind
from lingtan_tools.simulate.models import plant_key

TZ = "Asia/Shanghai"
LAT, LON, ALT = 31.49, 120.31, 5.0


@pytest.fixture(scope="module")
def park():
    return load_park(DEMO_PARK)


def local(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args), tz=TZ)


# --------------------------------------------------------------------------- noise


def test_ar1_recursion_by_hand():
    assert_allclose(physics.ar1(np.array([1.0, 0.0, 0.0]), 0.5), [1.0, 0.5, 0.25])
    assert_allclose(physics.ar1(np.array([0.0, 0.0, 1.0]), 0.5, x0=2.0), [1.0, 0.5, 1.25])
    assert physics.ar1(np.array([]), 0.5).size == 0
    assert physics.ar1_coefficient(60.0, 60.0) == pytest.approx(math.exp(-1))
    with pytest.raises(ValueError):
        physics.ar1_coefficient(1.0, 0.0)


# --------------------------------------------------------------------------- PV


def test_poa_isotropic_by_hand():
    # sun straight onto a 30 deg south-facing panel: AOI = 0
    tilt = math.radians(30)
    expected = 800 + 100 * (1 + math.cos(tilt)) / 2 + 793 * 0.2 * (1 - math.cos(tilt)) / 2
    assert float(physics.poa_global(30, 180, 30, 180, 800, 793, 100)) == pytest.approx(expected)
    # horizontal panel: POA = DNI cos(zenith) + DHI
    assert float(physics.poa_global(0, 180, 60, 120, 800, 500, 100)) == pytest.approx(800 * 0.5 + 100)


def test_pv_power_by_hand():
    assert_allclose(physics.pv_power(np.array([1000.0, 800.0, 2000.0, 0.0]), 500, 0.85, np.array([1.0, 0.5, 1.0, 1.0])),
                    [425.0, 170.0, 500.0, 0.0])
    assert_allclose(physics.clearness_index(np.array([-10.0, 0.0, 10.0])), [0.1, 0.75, 1.0])


@pytest.mark.parametrize("model", ["ineichen", "haurwitz"])
def test_pv_zero_at_night_peak_near_solar_noon(model):
    times = pd.date_range("2025-06-21 00:00", "2025-06-21 23:55", freq="5min", tz=TZ)
    cs = physics.clearsky_irradiance(times, LAT, LON, ALT, model=model)
    p = pd.Series(physics.pv_power(physics.poa_global(20, 180, cs["apparent_zenith"], cs["azimuth"], cs["dni"], cs["ghi"], cs["dhi"]), 500),
                  index=times)
    night = (times.hour < 4) | (times.hour >= 20)
    assert (p[night] == 0).all()
    # solar noon at 120.31 E on 21 June: 12:00 - 0.31 * 4 min + 1.7 min (equation of time) ~ 12:00
    peak = p.idxmax()
    assert abs((peak - local(2025, 6, 21, 12, 0)).total_seconds()) <= 30 * 60
    assert 350 < p.max() <= 500  # 500 kW x ~1000 W/m2 x 0.85 derate


def test_ineichen_works_offline_with_shipped_linke_turbidity():
    times = pd.date_range("2025-03-20 12:00", periods=1, tz=TZ)
    cs = physics.clearsky_irradiance(times, LAT, LON, ALT, model="ineichen")
    assert 700 < cs["ghi"].iloc[0] < 1000


# --------------------------------------------------------------------------- wind


def test_wind_power_curve_points():
    v = np.array([2.0, 3.0, 7.5, 12.0, 24.9, 25.0, 30.0])
    ramp = 2000 * (7.5**3 - 3**3) / (12**3 - 3**3)  # = 464.2857 kW
    assert_allclose(physics.wind_power(v, 2000, 3, 12, 25), [0, 0, ramp, 2000, 2000, 0, 0])
    assert ramp == pytest.approx(464.2857142857)
    with pytest.raises(ValueError):
        physics.wind_power(v, 2000, 12, 3, 25)


def test_weibull_wind_speed_median_and_mean():
    # z = 0 is the median: lambda (ln 2)^(1/k), lambda = 6 / Gamma(1.5)
    assert float(physics.weibull_wind_speed(0.0)) == pytest.approx(6 / math.gamma(1.5) * math.sqrt(math.log(2)))
    z = np.random.default_rng(0).standard_normal(200_000)
    assert physics.weibull_wind_speed(z).mean() == pytest.approx(6.0, rel=0.01)


# --------------------------------------------------------------------------- loads


def test_load_shift_by_hand():
    wed = pd.DatetimeIndex([local(2025, 6, 18, 10), local(2025, 6, 18, 12), local(2025, 6, 18, 12, 30), local(2025, 6, 18, 3)])
    assert_allclose(physics.load_power(wed, 150, base=0.3, shift="day"),
                    [150 * 0.9, 150 * (0.3 + 0.6 * 0.6), 150 * (0.3 + 0.6 * 0.8), 150 * 0.3])
    sat = pd.DatetimeIndex([local(2025, 6, 21, 10)])
    assert_allclose(physics.load_power(sat, 150, base=0.3, shift="day"), [150 * (0.3 + 0.6 * 0.3)])
    assert_allclose(physics.load_power(sat, 150, base=0.3, shift="day", noise=0.1, non_workday_factor=1.0), [150 * 0.99])
    with pytest.raises(ValueError):
        physics.shift_activity(3.0, "four_shift")


@pytest.mark.parametrize("shift", ["continuous", "three_shift", "two_shift", "day", "office"])
def test_holiday_and_weekend_lower_makeup_workday_normal(shift):
    def at(*d):
        return float(physics.load_power(pd.DatetimeIndex([local(*d, 10)]), 100, base=0.3, shift=shift)[0])

    workday = at(2025, 9, 30)  # Tuesday before National Day
    assert at(2025, 10, 1) < workday  # National Day
    assert at(2025, 10, 3) < workday  # holiday on a Friday
    assert at(2025, 9, 21) < workday  # ordinary Sunday
    assert at(2025, 9, 28) == pytest.approx(workday)  # Sunday made a workday (调休)
    assert at(2025, 10, 11) == pytest.approx(workday)  # Saturday made a workday


def test_night_shift_and_calendar_fallback():
    night = pd.DatetimeIndex([local(2025, 6, 18, 22), local(2025, 6, 18, 13)])
    assert_allclose(physics.load_power(night, 120, base=0.0, shift="night"), [108.0, 0.0])
    # chinese_calendar does not know 2090: Monday to Friday
    assert list(physics.is_workday([dt.date(2090, 1, 2), dt.date(2090, 1, 7)])) == [True, False]
    assert list(physics.is_workday([dt.date(2025, 10, 1), dt.date(2025, 9, 28)])) == [False, True]


# --------------------------------------------------------------------------- conversion plants


def test_conversion_plants_by_hand():
    assert float(physics.boiler_fuel(10.0, 0.92)) == pytest.approx(10 * 2.7 / (0.038931 * 0.92))  # 753.84 m3/h
    gas = float(physics.chp_fuel(4000.0, 0.38))
    assert gas == pytest.approx(4000 * 0.0036 / (0.38 * 0.038931))  # 973.38 m3/h
    assert float(physics.chp_heat(gas, 0.42)) == pytest.approx(14.4 * 0.42 / 0.38)  # 15.92 GJ/h
    assert float(physics.genset_fuel(800.0)) == pytest.approx(800 / (0.37 * 42.652 * 0.84 / 3.6))  # 217.3 L/h
    tue = pd.DatetimeIndex([local(2025, 6, 17, 9, 59), local(2025, 6, 17, 10), local(2025, 6, 17, 10, 29), local(2025, 6, 17, 10, 30),
                            local(2025, 6, 18, 10, 10)])
    assert list(physics.genset_test_run(tue)) == [False, True, True, False, False]


def test_storage_dispatch_by_hand():
    hours = np.arange(24.0)
    pv = np.where((hours >= 12) & (hours < 14), 0.8, 0.0)
    charge, discharge, soc = physics.storage_dispatch(hours, pv, 2000, 4000, 1.0, 0.5, efficiency=1.0)
    assert charge[0] == pytest.approx(1800)  # 0.5 -> 0.95 of 4000 kWh
    assert (charge[1:8] == 0).all()
    assert discharge[8] == pytest.approx(2000) and discharge[9] == pytest.approx(1400)  # down to soc_min 0.1
    assert discharge[10] == 0 and discharge[11] == 0
    assert_allclose(charge[12:14], [1600, 1600])  # midday PV soak at power x pv_fraction
    assert_allclose(discharge[17:19], [2000, 1200])
    assert soc.min() >= 0.1 - 1e-12 and soc.max() <= 0.95 + 1e-12
    assert ((charge == 0) | (discharge == 0)).all()
    assert list(physics.tou_period(np.array([7.99, 8.0, 12.0, 16.5, 17.0, 21.0, 23.9]))) == [0, 2, 1, 1, 2, 1, 1]


def test_grid_exchange_and_counters_by_hand():
    imp, exp = physics.grid_exchange(np.array([5.0, -3.0, 0.0]))
    assert_allclose(imp, [5, 0, 0])
    assert_allclose(exp, [0, 3, 0])
    assert_allclose(physics.integrate_rate(np.array([10.0, 20.0, 30.0]), 0.5, 100.0), [100, 105, 115])
    assert_allclose(physics.wrap_counter(np.array([65535.0, 65536.0, 65537.5]), 65536), [65535, 0, 1.5])


# --------------------------------------------------------------------------- codec


def test_register_orders_by_hand():
    from lingtan_collectors.modbus.model import ModbusBinding

    def b(type_, wo="big", bo="big"):
        return ModbusBinding(unit_id=1, function=3, address=0, type=type_, word_order=wo, byte_order=bo)

    assert codec.encode_registers(0x01020304, b("uint32")) == [0x0102, 0x0304]  # ABCD
    assert codec.encode_registers(0x01020304, b("uint32", "little")) == [0x0304, 0x0102]  # CDAB
    assert codec.encode_registers(0x01020304, b("uint32", "big", "little")) == [0x0201, 0x0403]  # BADC
    assert codec.encode_registers(0x01020304, b("uint32", "little", "little")) == [0x0403, 0x0201]  # DCBA
    assert codec.encode_registers(-2, b("int16")) == [0xFFFE]
    assert codec.encode_registers(1.0, b("float32")) == [0x3F80, 0x0000]
    assert codec.encode_registers(1.0, b("float64", "little")) == [0, 0, 0, 0x3FF0]
    for binding in (b(t, wo, bo) for t in codec.STRUCT_FORMAT for wo in ("big", "little") for bo in ("big", "little")):
        value = -12345 if binding.type in codec.SIGNED else 1234.5 if binding.type.startswith("float") else 54321
        assert codec.decode_registers(codec.encode_registers(value, binding), binding) == value


def test_wire_values_wrap_at_register_width(park):
    refs = {r.id: r for r in iter_points(park)}
    water = refs["m-e01-smt-water.total"]  # uint16, scale 1 m3
    assert codec.to_wire(water, 65536 + 42.7) == 42
    assert counters.canonical_modulus(water) == 65536
    l1 = refs["m-e01-smt-l1.total"]  # uint32, scale 0.1 kWh
    assert codec.to_wire(l1, 1000.0) == 10000
    c = 429496730.0  # > 2**32 * 0.1
    assert codec.to_wire(l1, c) == math.floor(l1.raw_value(c)) - 2**32
    l3 = refs["m-e01-smt-l3.total"]  # int32, word order little: goes negative past 2**31 - 1
    c = 214748370.0
    assert codec.to_wire(l3, c) == math.floor(l3.raw_value(c)) - 2**32 < 0
    rate = refs["m-e01-smt-l2.rate"]  # int16, scale 0.1: saturates instead of wrapping
    assert codec.to_wire(rate, 123.44) == 1234
    assert codec.to_wire(rate, 1e6) == 32767
    bakery = refs["m-e03-bakery-water.total"]  # MQTT, rollover 100000
    assert codec.to_wire(bakery, 100012.5) == pytest.approx(12.5)
    assert counters.raw_modulus(refs["m-pv-01.total"].point) is None


# --------------------------------------------------------------------------- engine


def test_counters_integrate_rates_exactly_and_only_increase(park):
    eng = Engine(park, seed=7, start=dt.datetime(2025, 6, 18, 0, 0), step_s=300.0)
    prev_vals = None
    prev_rates: dict[str, float] = {}
    counters = [(r.id, next(p.id for p in r.meter.points if p.kind.value == "rate" and
                 (p.role == r.point.role or r.meter.simulation is None or r.meter.simulation.model not in ("grid", "storage"))))
                for r in eng.refs if r.point.kind.value == "counter"]
    for k in range(300):  # crosses a 256-tick chunk boundary
        eng.advance_to(k)
        vals = {pid: eng.canonical(pid) for pid, _ in counters}
        if prev_vals is not None:
            for pid, rate_id in counters:
                assert vals[pid] - prev_vals[pid] == pytest.approx(prev_rates[rate_id] * 300 / 3600, rel=1e-9, abs=1e-6)
                assert vals[pid] >= prev_vals[pid]
        prev_vals = vals
        prev_rates = {rate_id: eng.canonical(rate_id) for _, rate_id in counters}


def test_uint16_and_rollover_counters_wrap_soon(park):
    eng = Engine(park, seed=3, start=dt.datetime(2025, 6, 18, 9, 0), step_s=60.0)
    for pid, modulus in [("m-e01-smt-water.total", 65536), ("m-e03-bakery-water.total", 100000), ("m-e03-pack-l6.total", 1e9)]:
        eng2 = Engine(park, seed=3, start=dt.datetime(2025, 6, 18, 9, 0), step_s=60.0)
        wires, wraps = [], 0
        for k in range(40):  # 40 minutes
            eng2.advance_to(k)
            wires.append(eng2.wire(pid))
            assert wires[-1] == pytest.approx(eng2.refs[eng2.index[pid]].raw_value(eng2.canonical(pid)) % modulus, abs=1.0)
            if k and wires[-1] < wires[-2]:
                wraps += 1
        assert wraps == 1, (pid, wires)
    assert eng.tick == -1


def test_same_seed_same_values_other_seed_differs(park):
    start = dt.datetime(2025, 10, 1, 6, 0)
    a, b, c = (Engine(park, seed=s, start=start, step_s=120.0) for s in (5, 5, 6))
    rows = {id(e): [] for e in (a, b, c)}
    for k in range(270):
        for e in (a, b, c):
            e.advance_to(k)
            rows[id(e)].append(e.values.copy())
    assert np.array_equal(np.array(rows[id(a)]), np.array(rows[id(b)]))
    assert not np.array_equal(np.array(rows[id(a)]), np.array(rows[id(c)]))
    # jumping straight to a tick gives the same state as stepping to it
    d = Engine(park, seed=5, start=start, step_s=120.0)
    d.advance_to(269)
    assert np.array_equal(d.values, rows[id(a)][269])


def test_plant_coupling_and_grid_balance(park):
    eng = Engine(park, seed=2, start=dt.datetime(2025, 6, 17, 10, 0), step_s=60.0)  # a Tuesday: genset test run
    eng.advance_to(10)
    v = eng.canonical
    assert v("m-chp-gas.rate") == pytest.approx(float(physics.chp_fuel(v("m-chp-gen.rate"), 0.38)))
    assert v("m-chp-heat.rate") == pytest.approx(float(physics.chp_heat(v("m-chp-gas.rate"), 0.42)))
    assert v("m-boiler1-gas.rate") == pytest.approx(float(physics.boiler_fuel(v("m-boiler1-steam.rate"), 0.92)))
    assert v("m-boiler2-gas.rate") == pytest.approx(float(physics.boiler_fuel(v("m-boiler2-steam.rate"), 0.91)))
    assert v("m-genset.rate") == pytest.approx(480.0)
    assert v("m-genset-fuel.rate") == pytest.approx(float(physics.genset_fuel(480.0)))
    gen_roles = {"pv", "wind", "biomass", "waste_heat", "chp", "standby_generation"}
    generation = sum(v(r.id) for r in eng.refs if r.point.kind.value == "rate" and r.point.role and r.point.role.value in gen_roles)
    net = v("m-tx1-lv.rate") + v("m-tx2-lv.rate") - generation + v("m-bess.rate_charge") - v("m-bess.rate_discharge")
    assert v("m-grid-main.rate_import") - v("m-grid-main.rate_export") == pytest.approx(net)
    assert min(v("m-grid-main.rate_import"), v("m-grid-main.rate_export")) == 0.0
    assert plant_key("m-boiler1-gas") == plant_key("m-boiler1-steam") == "m-boiler1"
    assert plant_key("m-genset-fuel") == plant_key("m-genset") == "m-genset"


def test_counter_reset(park):
    eng = Engine(park, seed=1, start=dt.datetime(2025, 6, 18, 12, 0), step_s=60.0)
    eng.advance_to(3)
    eng.reset_counters(["m-pv-01.total", "m-pv-01.rate"])
    assert eng.canonical("m-pv-01.total") == 0.0 and eng.canonical("m-pv-01.rate") > 0
    rate = eng.canonical("m-pv-01.rate")
    eng.advance_to(4)
    assert eng.canonical("m-pv-01.total") == pytest.approx(rate / 60)


# --------------------------------------------------------------------------- fault book


def test_fault_scopes_and_reproducible_random_faults(park):
    refs = iter_points(park)
    book = FaultBook(refs, seed=1, rate=0.0, tick_s=0.5)
    f = book.inject(FaultKind.silent, "m-e01-smt-l1.rate", 10, duration_s=2.0)
    assert f.target_type == "point" and f.until_tick == 10 + 1 + 4
    # a silent Modbus meter silences its whole unit id (1): every smt meter
    assert set(f.points) == {r.id for r in refs if r.point.modbus is not None and r.point.modbus.unit_id == 1}
    assert book.active(FaultKind.silent, "m-e01-smt-water.total", 14)
    assert not book.active(FaultKind.silent, "m-e01-smt-water.total", 15)
    assert not book.active(FaultKind.silent, "m-e01-pcb-l1.total", 12)
    f = book.inject("mqtt_missing_field", "iot-mqtt", 0)
    assert f.target_type == "device" and len(f.points) == 82
    f = book.inject("counter_reset", "m-bess", 3)
    assert f.points == ("m-bess.total_charge", "m-bess.total_discharge") and f.until_tick == 3
    with pytest.raises(ValueError):
        book.inject("opcua_bad_sensor", "m-office-elec", 0)
    with pytest.raises(KeyError):
        book.inject("silent", "no-such-meter", 0)
    draws = []
    for _ in range(2):
        b = FaultBook(refs, seed=9, rate=0.01, tick_s=1.0)
        draws.append([(x.kind, x.target, x.until_tick) for k in range(50) for x in b.random_step(k)])
    assert draws[0] == draws[1] and len(draws[0]) > 20
    assert {k for k, _, _ in draws[0]} >= {FaultKind.silent}


def test_counters_survive_a_restart_like_a_real_register(park, tmp_path):
    """`make down` then `make up`: every counter resumes from where it stood, none goes back."""
    import asyncio

    from lingtan.settings import Settings
    from lingtan_tools.simulate.runner import Simulator, load_counter_state

    state = tmp_path / "simulator" / "counters.json"
    start = dt.datetime(2026, 6, 1, 10, 0)

    async def run(seconds: float, t0: dt.datetime) -> dict[str, float]:
        sim = Simulator(park, Settings(), start=t0, speed=60.0, tick_s=0.05, protocols=set(), fault_rate=0.0,
                        counter_state=state)
        async with sim:
            first = sim.engine.counter_state()
            await sim.wait_ticks(int(seconds / 0.05))
        return first

    first_run_start = asyncio.run(run(0.5, start))
    saved = load_counter_state(state, park)
    assert set(saved) == set(first_run_start) and len(saved) == 114
    assert all(saved[p] >= first_run_start[p] for p in saved)
    assert sum(saved[p] - first_run_start[p] for p in saved) > 0  # it counted
    resumed = asyncio.run(run(0.2, start))  # same seed and start: without the state it would begin over
    assert resumed == saved
    # a file of another park, or garbage, is ignored (the counters start from their seeded readings)
    state.write_text('{"park": "other", "counters": {}}')
    assert load_counter_state(state, park) == {}
    state.write_text("not json")
    assert load_counter_state(state, park) == {}


# --------------------------------------------------------------------------- air temperature and the weather feed


def test_air_temperature_follows_season_and_day():
    c = dict(physics.SOUTH_JIANGSU_CLIMATE, synoptic_std=0.0)
    # 20 January 02:30: coldest day of the year, 12 h from the warmest hour: mean − A_y − A_d
    t = physics.air_temperature(pd.DatetimeIndex([local(2026, 1, 21, 2, 30)]), climate=c)
    assert t[0] == pytest.approx(16.5 - 12.5 * math.cos(2 * math.pi * (20 + 2.5 / 24 - 20) / 365.25) - 3.8, abs=1e-9)
    summer = physics.air_temperature(pd.date_range("2026-07-20", periods=24 * 10, freq="h", tz=TZ))
    winter = physics.air_temperature(pd.date_range("2026-01-15", periods=24 * 10, freq="h", tz=TZ))
    assert 24.0 < summer.mean() < 34.0 and -2.0 < winter.mean() < 9.0
    one = pd.date_range("2026-03-01", periods=600, freq="min", tz=TZ)
    # a function of time alone: the same instants give the same values in any chunking
    assert_allclose(physics.air_temperature(one), np.r_[physics.air_temperature(one[:256]),
                                                          physics.air_temperature(one[256:])])


def test_temperature_factor_by_hand():
    assert_allclose(physics.temperature_factor([20.0, 30.0, 10.0], cooling_gain=0.05, heating_gain=0.02),
                    [1.0, 1.0 + 0.05 * 8, 1.0 + 0.02 * 4])


def test_chiller_load_rises_with_the_temperature(park):
    from lingtan_tools.simulate.models import ParkRates

    rates = ParkRates(park, seed=3, step_s=3600.0)
    summer = rates.next_chunk(pd.date_range("2026-07-20", periods=24 * 7, freq="h", tz=TZ))
    rates = ParkRates(park, seed=3, step_s=3600.0)
    spring = rates.next_chunk(pd.date_range("2026-04-10", periods=24 * 7, freq="h", tz=TZ))
    chiller = ("m-chiller-elec", "main")
    assert summer[chiller].mean() > 1.3 * spring[chiller].mean()
    assert summer[chiller].max() <= 1500.0  # never above the chiller's rating


def test_weather_feed_rows_and_resume(park):
    from lingtan.settings import Settings
    from lingtan_tools.simulate.weather_feed import WeatherFeed

    feed = WeatherFeed(park, Settings(weather_feed_url="http://127.0.0.1:9"), seed=1)
    assert feed.station == "wx-jsdemo" and feed.url == "http://127.0.0.1:9/api/v1/weather"
    rows = feed.observations(pd.Timestamp("2026-03-01T00:00Z"), pd.Timestamp("2026-03-01T02:00Z"))
    assert [r["time"] for r in rows] == ["2026-03-01T00:00:00+00:00", "2026-03-01T01:00:00+00:00",
                                         "2026-03-01T02:00:00+00:00"]
    hours = pd.date_range("2026-03-01T00:00Z", periods=3, freq="h").tz_convert(TZ)
    assert [r["air_temperature"] for r in rows] == [round(float(v), 2) for v in physics.air_temperature(hours)]
    # nothing listens on port 9: the feed keeps its place and waits before trying again
    assert feed.step(dt.datetime(2026, 3, 1, 3, tzinfo=dt.UTC)) == 0 and feed.next_hour is None
    assert not feed.due(dt.datetime(2026, 3, 1, 3, tzinfo=dt.UTC))
    assert not WeatherFeed(park, Settings(weather_feed_url="off"), seed=1).enabled
