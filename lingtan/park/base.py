"""The building blocks that the park model and every protocol's device model share.

A protocol (OPC UA, Modbus, MQTT, …) describes its devices and point bindings with
:class:`DeviceBase` and :class:`BindingBase` in its own collector folder and registers them
through :mod:`lingtan.park.protocols`; :mod:`lingtan.park.model` assembles the park model from
what is registered (docs/architecture.md, "Adding a protocol").
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lingtan.park import protocols

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceBase(Strict):
    """A device of one protocol; a subclass narrows ``protocol`` to a ``Literal`` of its name."""

    id: Identifier
    protocol: Any

    @field_validator("protocol", mode="after")
    @classmethod
    def _as_member(cls, value: str) -> Any:
        # the device carries the Protocol member, as the points and the index do
        return protocols.protocol_enum()(value)

    @property
    @abstractmethod
    def point_rate_hz(self) -> float:
        """Readings per second one point of this device delivers at most (for buffer sizing); every
        protocol's device states it (pydantic models are abstract base classes: a device class without
        it cannot be instantiated)."""


class BindingBase(Strict):
    """Where a point's value lives on its device (a node id, a register, a topic and path)."""

    def integer_width(self) -> tuple[int, str] | None:
        """``(bits, description)`` when the device holds the value in a fixed-width integer
        (a counter there wraps at ``2**bits``, e.g. ``(16, "a uint16 register")``), else None."""
        return None
