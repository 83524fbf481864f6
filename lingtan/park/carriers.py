"""Energy carriers, their canonical units and the unit conversions the collectors apply.

Every raw reading is stored in InfluxDB in the canonical unit of its carrier and kind
(see docs/schema.md). A point may declare any unit listed here for its carrier; the
collector multiplies by the listed factor to reach the canonical unit. The factors are
exact SI relations (1 MWh = 1000 kWh, 1 GJ = 1000 MJ, ...), not standard coefficients;
coefficients that need a source (NCV, tce factors) belong to the calc-service factor
library.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Carrier(StrEnum):
    """Energy carriers (and water) that a meter can measure."""

    electricity = "electricity"
    natural_gas = "natural_gas"
    steam = "steam"
    heat = "heat"
    diesel = "diesel"
    gasoline = "gasoline"
    coal = "coal"
    lpg = "lpg"
    biomass = "biomass"
    water = "water"
    cooling = "cooling"


class Kind(StrEnum):
    """What a point's value is: a cumulative counter or an instantaneous rate."""

    counter = "counter"
    rate = "rate"


class ElectricityRole(StrEnum):
    """Role of an electricity point in the park's balance."""

    grid_import = "grid_import"
    grid_export = "grid_export"
    pv = "pv"
    wind = "wind"
    biomass = "biomass"
    waste_heat = "waste_heat"  # 余热余压发电
    chp = "chp"  # gas-fired combined heat and power
    standby_generation = "standby_generation"  # diesel gensets
    storage_charge = "storage_charge"
    storage_discharge = "storage_discharge"
    consumption = "consumption"


#: roles whose energy is generated on site
GENERATION_ROLES = frozenset(
    {
        ElectricityRole.pv,
        ElectricityRole.wind,
        ElectricityRole.biomass,
        ElectricityRole.waste_heat,
        ElectricityRole.chp,
        ElectricityRole.standby_generation,
    }
)
#: on-site generation that counts as renewable (GB/T 2589-2020 5.3 boundary rules apply later)
RENEWABLE_ROLES = frozenset({ElectricityRole.pv, ElectricityRole.wind, ElectricityRole.biomass})


@dataclass(frozen=True)
class CarrierUnits:
    """Canonical units of one carrier and the accepted input units with their factors."""

    counter: str
    rate: str
    counter_units: dict[str, float]
    rate_units: dict[str, float]

    def factor(self, kind: Kind, unit: str) -> float:
        """Multiplier from ``unit`` to the canonical unit for ``kind``; KeyError if not accepted."""
        table = self.counter_units if kind is Kind.counter else self.rate_units
        return table[unit]

    def accepted(self, kind: Kind) -> list[str]:
        return sorted(self.counter_units if kind is Kind.counter else self.rate_units)


_ENERGY = CarrierUnits(
    counter="kWh",
    rate="kW",
    counter_units={"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3, "GWh": 1e6},
    rate_units={"W": 1e-3, "kW": 1.0, "MW": 1e3},
)
_HEAT = CarrierUnits(
    counter="GJ",
    rate="GJ/h",
    counter_units={"MJ": 1e-3, "GJ": 1.0, "TJ": 1e3, "kWh_th": 3.6e-3, "MWh_th": 3.6},
    rate_units={"MJ/h": 1e-3, "GJ/h": 1.0, "kW_th": 3.6e-3, "MW_th": 3.6},
)
_VOLUME = CarrierUnits(
    counter="m3",
    rate="m3/h",
    counter_units={"L": 1e-3, "m3": 1.0, "km3": 1e3, "10^4 m3": 1e4},
    rate_units={"L/h": 1e-3, "m3/h": 1.0, "m3/min": 60.0, "m3/s": 3600.0},
)
_MASS = CarrierUnits(
    counter="t",
    rate="t/h",
    counter_units={"kg": 1e-3, "t": 1.0},
    rate_units={"kg/h": 1e-3, "t/h": 1.0, "kg/s": 3.6},
)
_LIQUID_FUEL = CarrierUnits(
    counter="L",
    rate="L/h",
    counter_units={"L": 1.0, "m3": 1e3},
    rate_units={"L/h": 1.0, "L/min": 60.0, "m3/h": 1e3},
)

CARRIER_UNITS: dict[Carrier, CarrierUnits] = {
    Carrier.electricity: _ENERGY,
    Carrier.natural_gas: _VOLUME,  # m3 at the meter's reference conditions (standard m3 for billing meters)
    Carrier.steam: _MASS,
    Carrier.heat: _HEAT,
    Carrier.diesel: _LIQUID_FUEL,
    Carrier.gasoline: _LIQUID_FUEL,
    Carrier.coal: _MASS,
    Carrier.lpg: _MASS,
    Carrier.biomass: _MASS,
    Carrier.water: _VOLUME,
    Carrier.cooling: _HEAT,
}


def canonical_unit(carrier: Carrier, kind: Kind) -> str:
    """Canonical unit in which a (carrier, kind) value is stored in InfluxDB."""
    units = CARRIER_UNITS[carrier]
    return units.counter if kind is Kind.counter else units.rate
