"""The registry of protocols the park model accepts.

A protocol package registers itself under the entry-point group ``lingtan.protocols``: the
entry point names a function that returns its :class:`ProtocolSpec` objects. The collectors
register one function that finds every protocol folder (``lingtan_collectors/<protocol>/model.py``),
so a new protocol is one new folder (docs/architecture.md, "Adding a protocol").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "lingtan.protocols"

#: ``(location in the park file, message)``, as :mod:`lingtan.park.checks` reports them
Issue = tuple[tuple[Any, ...], str]
#: one bound point: ``(device, point, location of the point in the park file)``
BoundPoint = tuple[Any, Any, tuple[Any, ...]]


@dataclass(frozen=True)
class ProtocolSpec:
    """What a protocol contributes to the park model."""

    name: str  # the ``protocol`` of its devices and the key of its point bindings, e.g. "modbus"
    device_model: type  # a lingtan.park.base.DeviceBase with ``protocol: Literal[name]``
    binding_model: type  # a lingtan.park.base.BindingBase
    rank: int  # position in listings and messages (lower first)
    # park-wide checks over every point bound with this protocol (duplicate nodes, overlapping
    # registers, …), reported like lingtan.park.checks
    check_bindings: Callable[[list[BoundPoint]], Iterable[Issue]] | None = None


class NoProtocolError(RuntimeError):
    """No package registered a protocol, so no park file can name a device."""


@cache
def registered() -> tuple[ProtocolSpec, ...]:
    """Every registered protocol, by rank; a name registered twice is an error."""
    found: dict[str, ProtocolSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        for spec in ep.load()():
            if spec.name in found:
                raise RuntimeError(f"protocol {spec.name!r} is registered twice (entry point {ep.name!r} "
                                   f"of group {ENTRY_POINT_GROUP})")
            found[spec.name] = spec
    if not found:
        raise NoProtocolError(f"no protocol is installed (entry-point group {ENTRY_POINT_GROUP}); "
                              "install lingtan-collectors")
    return tuple(sorted(found.values(), key=lambda spec: (spec.rank, spec.name)))


@cache
def protocol_enum() -> type[StrEnum]:
    """The ``Protocol`` enum: one member per registered protocol."""
    return StrEnum("Protocol", [(spec.name, spec.name) for spec in registered()], module="lingtan.park.model")


def spoken_list(names: list[str]) -> str:
    """``"opcua, modbus or mqtt"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
