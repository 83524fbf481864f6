"""Flat views of a park model: every point with its meter, unit, enterprise and device."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from lingtan.park.carriers import CARRIER_UNITS, Carrier
from lingtan.park.model import Enterprise, Meter, Park, Point, ProductionUnit, Protocol


@dataclass(frozen=True)
class PointRef:
    """A point together with everything above it in the hierarchy."""

    park_id: str
    enterprise: Enterprise
    unit: ProductionUnit
    meter: Meter
    point: Point
    device_id: str

    @property
    def id(self) -> str:
        return self.point.id

    @property
    def carrier(self) -> Carrier:
        return self.meter.carrier

    @property
    def protocol(self) -> Protocol:
        return self.point.protocol

    @cached_property
    def to_canonical(self) -> float:
        """Factor from the point's declared unit to the canonical unit of its carrier and kind."""
        return CARRIER_UNITS[self.carrier].factor(self.point.kind, self.point.unit)

    def engineering_value(self, raw: float) -> float:
        """Raw device value -> canonical unit: ``(raw * scale + offset) * unit factor``."""
        return (raw * self.point.scale + self.point.offset) * self.to_canonical

    def raw_value(self, canonical: float) -> float:
        """Inverse of :meth:`engineering_value` (used by the simulators)."""
        return (canonical / self.to_canonical - self.point.offset) / self.point.scale


def iter_points(park: Park) -> list[PointRef]:
    """All points of ``park`` in file order."""
    refs = []
    for ent in park.enterprises:
        for unit in ent.units:
            for meter in unit.meters:
                for point in meter.points:
                    refs.append(PointRef(park.park.id, ent, unit, meter, point, meter.device))
    return refs


def points_by_device(park: Park) -> dict[str, list[PointRef]]:
    """Points grouped by device id, in file order."""
    out: dict[str, list[PointRef]] = {d.id: [] for d in park.devices}
    for ref in iter_points(park):
        out[ref.device_id].append(ref)
    return out
