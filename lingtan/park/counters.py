"""Counter semantics, in one place: register wrap, what a drop means, and what a meter can deliver.

Every component that looks at a cumulative counter uses these rules: the collectors when they
flag a reading (``data_quality``), the simulators when they wrap a register, and the
calc-service when it turns readings into consumption. docs/accounting.md §1 states them for
users; the numbers below are explained where they are defined.

Modulus
    The raw value at which a counter wraps: the point's ``rollover`` if set, else the width of
    its Modbus integer register (2^16, 2^32), else none (docs/park-model.md, ``rollover``).

A drop (a reading below the previous one) is exactly one of
    ``rollover``   it fell by more than half the modulus: the register wrapped;
                   consumption = value − previous + modulus;
    ``reset``      the new value is near zero: at most :data:`RESET_FRACTION` of the previous
                   reading, or at most what the meter could have delivered since the previous
                   reading, and never more than :data:`RESET_WINDOW_H` of it
                   (:func:`reset_floor`); the register restarted from zero and the consumption
                   is the new value;
    ``backwards``  any other drop (a gateway replaying an older value, a re-synced register):
                   it counts zero, and the next increase is measured from the new value.

Plausibility
    An interval's consumption may not exceed what the meter's rated capacity could deliver in
    it (:func:`consumption_limit`). The calc-service quarantines an interval above the limit:
    it is recorded, shown, and excluded from totals until a person confirms or corrects it.
"""

from __future__ import annotations

import numpy as np

from lingtan.park.carriers import Carrier, Kind
from lingtan.park.index import PointRef
from lingtan.park.model import Meter, Point

#: a drop to at most this fraction of the previous reading is a reset: a register that restarted
#: from zero has counted up only briefly, whereas a replayed or re-synced value lies close to the
#: old one (the demo park's restart replayed values 99.9 % of the previous reading)
RESET_FRACTION = 0.1
#: meters may carry more than their rating for a while: 1.5 p.u. is the current limit for normal
#: cyclic loading of distribution and medium power transformers (IEC 60076-7, loading guide for
#: oil-immersed power transformers, Table 4), and flow meters are sized with a margin over the
#: design flow of the same order
OVERLOAD = 1.5
#: the "near zero" of a reset is at most this many hours of rated flow, however long the gap
#: before it: after a day without readings a value replayed a little lower would otherwise pass
#: as a reset and count the whole register (a new meter fitted during an outage is recorded as a
#: replacement, docs/accounting.md §1)
RESET_WINDOW_H = 1.0
#: intervals shorter than this are judged as if they were this long: reading timestamps carry
#: collection jitter of a few seconds, which would otherwise make a 1-s interval look 3× too big
MIN_WINDOW_H = 60.0 / 3600.0

#: rated capacity [canonical rate unit] of a meter that states neither ``capacity`` nor a rate
#: range: a generous ceiling for one metered connection of an industrial park (a 110 kV park
#: substation of 2 × 50 MVA; a DN400 gas main; a large boiler house), so that only numbers no
#: meter of that kind could deliver are caught. A park states the real rating (docs/park-model.md).
DEFAULT_CAPACITY: dict[Carrier, float] = {
    Carrier.electricity: 100_000.0,  # kW
    Carrier.natural_gas: 20_000.0,  # m3/h
    Carrier.steam: 200.0,  # t/h
    Carrier.heat: 500.0,  # GJ/h (≈ 140 MW)
    Carrier.diesel: 5_000.0,  # L/h
    Carrier.gasoline: 5_000.0,  # L/h
    Carrier.coal: 200.0,  # t/h
    Carrier.lpg: 20.0,  # t/h
    Carrier.biomass: 100.0,  # t/h
    Carrier.water: 5_000.0,  # m3/h
    Carrier.cooling: 500.0,  # GJ/h
}

# event names (also the calc-service's interval events; the collectors prefix them with counter_)
ROLLOVER, RESET, BACKWARDS = "rollover", "reset", "backwards"


def raw_modulus(point: Point) -> float | None:
    """Raw value at which a counter wraps: ``rollover``, else the width of the integer its binding
    holds (a Modbus uint16 register wraps at 65 536), else None."""
    if point.kind is not Kind.counter:
        return None
    if point.rollover is not None:
        return float(point.rollover)
    width = point.binding.integer_width()
    return None if width is None else float(1 << width[0])


def canonical_modulus(ref: PointRef) -> float | None:
    """The modulus in the point's canonical unit (None if the counter never wraps)."""
    mod = raw_modulus(ref.point)
    if mod is None:
        return None
    return ref.engineering_value(mod) - ref.engineering_value(0.0)


def rated_capacity(meter: Meter) -> float:
    """What the meter can carry [canonical rate unit of its carrier, e.g. kW].

    Its ``capacity`` if stated; else the widest bound of its rate points' plausibility range
    (``valid_min``/``valid_max``, which the park already states as the largest credible rate);
    else :data:`DEFAULT_CAPACITY` for its carrier.
    """
    if meter.capacity is not None:
        return meter.capacity
    bounds = [abs(b) for p in meter.points if p.kind is Kind.rate for b in (p.valid_min, p.valid_max)
              if b is not None and b != 0]
    return max(bounds) if bounds else DEFAULT_CAPACITY[meter.carrier]


def register_step(ref: PointRef) -> float:
    """Canonical value of one count of an integer register (0 for float counters)."""
    p = ref.point
    if p.kind is Kind.counter and p.binding.integer_width() is not None:
        return abs(p.scale * ref.to_canonical)
    return 0.0


def consumption_limit(capacity: float, hours: np.ndarray | float, step: float = 0.0) -> np.ndarray | float:
    """Most a meter of ``capacity`` [unit/h] can deliver in ``hours`` [h]: capacity × max(hours,
    :data:`MIN_WINDOW_H`) × :data:`OVERLOAD`, plus one register ``step`` (an integer register
    shows whole counts, so a short interval may show one count more than flowed) [unit]."""
    return capacity * np.maximum(hours, MIN_WINDOW_H) * OVERLOAD + step


#: event names by code (the vectorised functions work on small integer codes)
EVENT_NAMES = np.array(["", ROLLOVER, RESET, BACKWARDS], dtype=object)
_ROLLOVER, _RESET, _BACKWARDS = 1, 2, 3


def drop_codes(previous: np.ndarray, value: np.ndarray, modulus: np.ndarray | float | None,
               floor: np.ndarray | float = 0.0) -> np.ndarray:
    """Event code of each step ``previous → value`` (vectorised): 0 none, then the positions of
    :data:`EVENT_NAMES` (rollover, reset, backwards).

    ``modulus`` and ``floor`` (the largest reading that is still "near zero": what the meter could
    have delivered since the previous reading, :func:`consumption_limit`) broadcast against the
    values; a NaN or None modulus means the counter never wraps.
    """
    previous = np.asarray(previous, dtype=float)
    value = np.asarray(value, dtype=float)
    code = np.zeros(np.broadcast(previous, value).shape, dtype=np.int8)
    drop = value < previous
    if not drop.any():
        return code
    mod = np.nan if modulus is None else np.asarray(modulus, dtype=float)
    with np.errstate(invalid="ignore"):
        rolled = drop & (previous - value > mod / 2)  # NaN compares False: no rollover
        reset = drop & ~rolled & (value <= np.maximum(RESET_FRACTION * previous, floor))
    code[drop] = _BACKWARDS
    code[reset] = _RESET
    code[rolled] = _ROLLOVER
    return code


def reset_floor(capacity: np.ndarray | float, hours: np.ndarray | float, step: np.ndarray | float = 0.0):
    """The largest reading that is still "near zero" after a drop [unit]: what a meter of
    ``capacity`` could deliver in ``hours``, at most :data:`RESET_WINDOW_H` of it."""
    return consumption_limit(capacity, np.minimum(hours, RESET_WINDOW_H), step)


def step_consumption(previous: np.ndarray, value: np.ndarray, modulus: np.ndarray | float | None,
                     floor: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Consumption of each step and its event code (see the module doc); never negative."""
    previous = np.asarray(previous, dtype=float)
    value = np.asarray(value, dtype=float)
    code = drop_codes(previous, value, modulus, floor)
    diff = value - previous
    if code.any():
        mod = 0.0 if modulus is None else np.nan_to_num(np.asarray(modulus, dtype=float))
        diff = np.where(code == _ROLLOVER, diff + mod, diff)
        diff = np.where(code == _RESET, value, diff)
        diff = np.where(code == _BACKWARDS, 0.0, diff)
    return np.maximum(diff, 0.0), code


def classify_step(previous: float, value: float, modulus: float | None, floor: float = 0.0) -> str:
    """The event name of one step (the collectors' live check): the rules of :func:`drop_codes`."""
    if not value < previous:  # the common case, without building arrays
        return ""
    return str(EVENT_NAMES[drop_codes(np.array([previous]), np.array([value]), modulus, floor)[0]])
