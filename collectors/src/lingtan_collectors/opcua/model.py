"""The OPC UA device and point binding of the park model (docs/park-model.md, "Devices")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lingtan.park.base import BindingBase, DeviceBase
from lingtan.park.protocols import BoundPoint, Issue, ProtocolSpec


class OpcUaDevice(DeviceBase):
    protocol: Literal["opcua"]
    endpoint: str | None = None  # default: settings.opcua_endpoint
    namespace_uri: str = "urn:lingtan:park"
    publishing_interval_ms: int = Field(1000, ge=10, le=3_600_000)
    max_nodes_per_connection: int = Field(500, ge=1, le=100_000)
    stale_after_s: float = Field(60.0, gt=0)

    @property
    def point_rate_hz(self) -> float:
        return 1000.0 / self.publishing_interval_ms


class OpcUaBinding(BindingBase):
    node_id: str = Field(pattern=r"^(ns=\d+;)?[sig]=.+$")


def check_bindings(bound: list[BoundPoint]) -> list[Issue]:
    """A node of a device is bound to one point only."""
    errors: list[Issue] = []
    seen: dict[tuple[str, str], str] = {}
    for device, point, ploc in bound:
        key = (device.id, point.opcua.node_id)
        if key in seen:
            errors.append(((*ploc, "opcua", "node_id"),
                           f"node id {point.opcua.node_id!r} already bound to point {seen[key]!r}"))
        seen[key] = point.id
    return errors


PROTOCOL = ProtocolSpec("opcua", OpcUaDevice, OpcUaBinding, rank=10, check_bindings=check_bindings)
