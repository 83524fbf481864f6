"""The MQTT device and point binding of the park model (docs/park-model.md, "Devices")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lingtan.park.base import BindingBase, DeviceBase
from lingtan.park.protocols import BoundPoint, Issue, ProtocolSpec

#: assumed publishing interval of an MQTT point (the park model states none) for buffer sizing [s]
ASSUMED_INTERVAL_S = 5.0


class MqttDevice(DeviceBase):
    protocol: Literal["mqtt"]
    host: str | None = None  # default: settings.mqtt_host
    port: int | None = Field(None, ge=1, le=65535)
    timestamp_path: str = "ts"  # JSON path of the epoch-milliseconds timestamp in every payload
    stale_after_s: float = Field(60.0, gt=0)

    @property
    def point_rate_hz(self) -> float:
        return 1.0 / ASSUMED_INTERVAL_S


class MqttBinding(BindingBase):
    topic: str = Field(min_length=1)
    json_path: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

    @field_validator("topic")
    @classmethod
    def _no_wildcards(cls, v: str) -> str:
        if "+" in v or "#" in v:
            raise ValueError(f"topic {v!r} may not contain MQTT wildcards")
        return v


def check_bindings(bound: list[BoundPoint]) -> list[Issue]:
    """A topic and JSON path of a device feed one point only."""
    errors: list[Issue] = []
    seen: dict[tuple[str, str, str], str] = {}
    for device, point, ploc in bound:
        b = point.mqtt
        key = (device.id, b.topic, b.json_path)
        if key in seen:
            errors.append(((*ploc, "mqtt", "json_path"),
                           f"topic {b.topic!r} path {b.json_path!r} already bound to point {seen[key]!r}"))
        seen[key] = point.id
    return errors


PROTOCOL = ProtocolSpec("mqtt", MqttDevice, MqttBinding, rank=30, check_bindings=check_bindings)
