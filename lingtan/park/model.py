"""The park model: park -> enterprises -> production units -> meters -> points.

One YAML file describes a park (see docs/park-model.md). It is validated on load by
:func:`lingtan.park.loader.load_park`; validation errors name the file, line and field.
Devices and point bindings come from the protocols registered in :mod:`lingtan.park.protocols`
(each collector folder declares its own in ``model.py``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import ConfigDict, Field, create_model, field_validator, model_validator

from lingtan.park.base import BindingBase, Identifier, Strict
from lingtan.park.carriers import Carrier, ElectricityRole, Kind
from lingtan.park.protocols import protocol_enum, registered, spoken_list

TAG_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: tag keys the schema sets itself; a point's own tags may not override them
RESERVED_TAGS = frozenset(
    {"park", "enterprise", "unit", "meter", "point", "carrier", "protocol", "role", "device", "kind",
     "usage", "reason", "time"}
)

#: the protocols the installed collectors speak, by rank (lingtan.park.protocols)
PROTOCOLS = registered()
#: one member per protocol, e.g. ``Protocol.modbus``
Protocol = protocol_enum()


class Usage(StrEnum):
    """How a meter's energy counts in GB/T 2589 comprehensive energy consumption."""

    production = "production"
    non_production = "non_production"  # 生活用能: excluded
    feedstock = "feedstock"  # 原料用能: reported on its own line


# --------------------------------------------------------------------------- devices and points

#: a device of any registered protocol, told apart by its ``protocol``
Device = Annotated[Union[tuple(spec.device_model for spec in PROTOCOLS)], Field(discriminator="protocol")]  # noqa: UP007


class PointBase(Strict):
    """A point without its protocol binding; :class:`Point` adds one optional field per protocol."""

    id: Identifier
    kind: Kind
    unit: str
    scale: float = 1.0
    offset: float = 0.0
    role: ElectricityRole | None = None
    valid_min: float | None = None  # plausibility range, in the canonical unit
    valid_max: float | None = None
    rollover: float | None = Field(None, gt=0)  # raw counter modulus where the binding does not fix one
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _tag_keys(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
            if not TAG_KEY.match(key):
                raise ValueError(f"tag key {key!r} must match {TAG_KEY.pattern}")
            if key in RESERVED_TAGS:
                raise ValueError(f"tag key {key!r} is reserved by the schema")
        return tags

    @model_validator(mode="after")
    def _one_binding(self) -> PointBase:
        bound = [spec.name for spec in PROTOCOLS if getattr(self, spec.name) is not None]
        if len(bound) != 1:
            names = spoken_list([spec.name for spec in PROTOCOLS])
            raise ValueError(f"a point needs exactly one protocol binding ({names}), got {bound or 'none'}")
        if self.valid_min is not None and self.valid_max is not None and self.valid_min > self.valid_max:
            raise ValueError(f"valid_min {self.valid_min} > valid_max {self.valid_max}")
        return self

    @property
    def protocol(self) -> Any:
        """The :data:`Protocol` member of the point's binding."""
        return next(Protocol(spec.name) for spec in PROTOCOLS if getattr(self, spec.name) is not None)

    @property
    def binding(self) -> BindingBase:
        """The point's one protocol binding."""
        found: BindingBase = getattr(self, self.protocol.value)
        return found


#: a point: :class:`PointBase` plus ``<protocol>: <its binding> | None`` for every protocol
Point = create_model(  # type: ignore[call-overload]
    "Point", __base__=PointBase, __module__=__name__,
    **{spec.name: (Optional[spec.binding_model], None) for spec in PROTOCOLS},  # noqa: UP045
)


class Simulation(Strict):
    """How the demo simulator drives a meter. Ignored outside the simulator."""

    model: Literal["pv", "wind", "load", "boiler", "chp", "storage", "genset", "constant", "grid"]
    capacity: float = Field(gt=0)  # rated power in the canonical rate unit of the meter's carrier
    params: dict[str, float | str] = Field(default_factory=dict)


class Direction(StrEnum):
    """Which way a non-electricity meter's energy crosses its enterprise's boundary.

    Electricity points state this through their role instead (docs/park-model.md).
    """

    in_ = "in"  # energy entering the enterprise (bought, or received from another one)
    out = "out"  # produced inside by conversion (boiler steam, CHP heat, cooling, recovered heat)
    export = "export"  # supplied outside the park boundary: deducted (GB/T 2589-2020 ch. 5)


class Meter(Strict):
    id: Identifier
    name: str
    carrier: Carrier
    device: Identifier
    usage: Usage = Usage.production
    # the meter upstream whose reading already includes this one (a sub-meter); same carrier
    parent: Identifier | None = None
    direction: Direction = Direction.in_
    # False: measured for monitoring and balances only, never counted in energy or carbon totals
    # (e.g. the fuel of a biomass plant whose electricity is counted as renewable generation)
    counted: bool = True
    # rated capacity in the canonical rate unit of the carrier (kW, m3/h, t/h, GJ/h, L/h): the most
    # the metered connection can carry; the calc-service quarantines consumption above it
    # (lingtan.park.counters.rated_capacity gives the default when it is not stated)
    capacity: float | None = Field(None, gt=0)
    simulation: Simulation | None = None
    points: list[Point] = Field(min_length=1)


class ProductionUnit(Strict):
    id: Identifier
    name: str
    meters: list[Meter] = Field(default_factory=list)


CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_char(code17: str) -> str:
    """Check character of a unified social credit code (GB 32100-2015, clause 5.3)."""
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(code17, CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31]


class Enterprise(Strict):
    id: Identifier
    name: str
    credit_code: str  # 统一社会信用代码, GB 32100-2015
    industry_code: str = Field(pattern=r"^[A-T]\d{2,4}$")  # GB/T 4754-2017 category, e.g. C3130
    units: list[ProductionUnit] = Field(min_length=1)

    @field_validator("credit_code")
    @classmethod
    def _credit_code(cls, v: str) -> str:
        if len(v) != 18 or any(c not in CREDIT_CODE_CHARS for c in v):
            raise ValueError(f"unified social credit code {v!r} must be 18 characters of {CREDIT_CODE_CHARS}")
        expected = credit_code_check_char(v[:17])
        if v[17] != expected:
            raise ValueError(f"unified social credit code {v!r} has check character {v[17]!r}, expected {expected!r}")
        return v


# --------------------------------------------------------------------------- topology


class NodeType(StrEnum):
    supply = "supply"
    conversion = "conversion"
    end_use = "end_use"


NODE_KINDS: dict[NodeType, frozenset[str]] = {
    NodeType.supply: frozenset({"grid", "gas_main", "steam_main", "onsite_generation", "fuel_supply", "water_main"}),
    NodeType.conversion: frozenset({"transformer", "boiler", "chp", "chiller", "storage", "heat_exchanger"}),
    NodeType.end_use: frozenset({"unit", "process", "export"}),
}


class FlowNode(Strict):
    id: Identifier
    name: str
    type: NodeType
    kind: str
    unit: Identifier | None = None  # production unit id, for end_use nodes of kind "unit"
    # a boiler's efficiency or a CHP's total efficiency from its nameplate or acceptance test [0..1]:
    # what the efficiency recommendation judges it against (docs/analysis.md §7)
    rated_efficiency: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _kind(self) -> FlowNode:
        if self.kind not in NODE_KINDS[self.type]:
            raise ValueError(f"node kind {self.kind!r} is not one of {sorted(NODE_KINDS[self.type])} for type {self.type.value}")
        if self.rated_efficiency is not None and self.kind not in ("boiler", "chp"):
            raise ValueError(f"rated_efficiency is for a boiler or a CHP, not a {self.kind}")
        if self.kind == "unit" and self.unit is None:
            raise ValueError("an end_use node of kind 'unit' must name its production unit in 'unit'")
        return self


class FlowEdge(Strict):
    source: Identifier = Field(alias="from")
    target: Identifier = Field(alias="to")
    carrier: Carrier
    meter: Identifier
    point: Identifier | None = None  # which counter of the meter measures the edge (default: its only counter)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Topology(Strict):
    nodes: list[FlowNode] = Field(default_factory=list)
    edges: list[FlowEdge] = Field(default_factory=list)


class Location(Strict):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude: float = 0.0


class WeatherSource(StrEnum):
    """Where a weather station's observations come from (docs/park-model.md, "Weather")."""

    onsite = "onsite"  # the park's own station (e.g. the PV plant's environmental monitor)
    meteorological_service = "meteorological_service"  # a national or provincial station (气象站)
    vendor = "vendor"  # a commercial weather-data service
    simulated = "simulated"  # the demo simulator's weather (lingtan simulate)


class WeatherStation(Strict):
    id: Identifier
    name: str
    source: WeatherSource


class Weather(Strict):
    """The park's weather stations and the degree-day bases its analysis uses.

    Observations (hourly air temperature [°C], global horizontal irradiance [W/m²]) arrive
    through the calc-service's weather import (docs/analysis.md §4, docs/schema.md ``weather``).
    The default bases are those of GB 50176-2016 (民用建筑热工设计规范) §2.1: heating degree
    days below 18 °C (HDD18) and cooling degree days above 26 °C (CDD26).
    """

    stations: list[WeatherStation] = Field(min_length=1)
    reference: Identifier  # the station the weather-normalised comparison uses
    heating_base: float = Field(18.0, ge=-10, le=30)  # [°C]
    cooling_base: float = Field(26.0, ge=10, le=40)  # [°C]

    @model_validator(mode="after")
    def _reference(self) -> Weather:
        ids = [s.id for s in self.stations]
        if len(set(ids)) != len(ids):
            raise ValueError(f"weather station ids must be unique, got {ids}")
        if self.reference not in ids:
            raise ValueError(f"reference station {self.reference!r} is not one of the stations {ids}")
        if self.heating_base > self.cooling_base:
            raise ValueError(f"heating_base {self.heating_base} °C is above cooling_base {self.cooling_base} °C")
        return self


class ParkInfo(Strict):
    id: Identifier
    name: str
    timezone: Literal["Asia/Shanghai"] = "Asia/Shanghai"
    province: str
    grid_region: str  # e.g. east_china (MEE regional grid)
    location: Location


class Park(Strict):
    park: ParkInfo
    devices: list[Device] = Field(min_length=1)
    enterprises: list[Enterprise] = Field(min_length=1)
    topology: Topology = Field(default_factory=Topology)
    weather: Weather | None = None
