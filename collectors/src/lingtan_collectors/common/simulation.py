"""What a simulated device needs from the world that drives it, so that each protocol's
simulator (``<protocol>/simulator.py``) lives in its collector folder without knowing the
park simulator (docs/simulator.md): the values, the injected faults and an emission log.

The park simulator (``lingtan simulate``) implements these protocols; the golden tests drive
the same simulated devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np


class FaultKind(StrEnum):
    opcua_bad_sensor = "opcua_bad_sensor"
    opcua_comm_error = "opcua_comm_error"
    modbus_illegal_address = "modbus_illegal_address"
    modbus_device_failure = "modbus_device_failure"
    modbus_timeout = "modbus_timeout"
    mqtt_truncated = "mqtt_truncated"
    mqtt_not_json = "mqtt_not_json"
    mqtt_missing_field = "mqtt_missing_field"
    counter_reset = "counter_reset"
    silent = "silent"


class ValueSource(Protocol):
    """The canonical value of every park point at the current tick (the park simulator's engine)."""

    values: np.ndarray  # canonical value per point, in the order of the park's point index
    is_counter: np.ndarray  # bool per point
    tick: int

    def ts_ms(self, tick: int) -> int:
        """The source timestamp of ``tick`` [ms since the epoch]."""

    def time_at(self, tick: int) -> Any:
        """The source time of ``tick`` (a timezone-aware datetime)."""


class FaultSource(Protocol):
    """Which faults are active on a point at a tick."""

    def active(self, kind: FaultKind, point: str, tick: int) -> bool: ...

    def first_active(self, kinds: tuple[FaultKind, ...], point: str, tick: int) -> FaultKind | None: ...


class EmissionSink(Protocol):
    """Where a simulated device records what it served (the emission log, docs/simulator.md)."""

    enabled: bool

    def write(self, records: list[dict[str, Any]]) -> None: ...


def value_record(protocol: str, point: str, ts_ms: int, value: float, raw: float | int, unwrapped: float | None) -> dict[str, Any]:
    """One emitted value (``unwrapped`` only for counters)."""
    rec: dict[str, Any] = {"protocol": protocol, "point": point, "ts_ms": ts_ms, "value": value, "raw": raw}
    if unwrapped is not None:
        rec["unwrapped"] = unwrapped
    return rec


@dataclass(frozen=True)
class ParkSimContext:
    """What the park simulator hands a protocol when it builds that protocol's simulated servers."""

    park_id: str
    settings: Any  # lingtan.settings.Settings: default endpoints and broker credentials
    refs: list[Any]  # every PointRef of the park, in point-index order
    faults: FaultSource
    emit: EmissionSink
    current_tick: Callable[[], int]  # the last published tick
    history_count: int = 3600  # values kept per variable where the protocol serves history
    connect_timeout_s: float = 3.0  # how long start() waits for a broker before going on
    index: int = 0  # servers of the same protocol built before this one (for unique client ids)


class ParkSimServer(Protocol):
    """One simulated server (or publisher) for the park devices that share one endpoint."""

    async def start(self, engine: ValueSource) -> None: ...

    async def publish(self, engine: ValueSource, faults: FaultSource, tick: int, emit: EmissionSink) -> None: ...

    async def stop(self) -> None: ...

    def describe(self) -> str: ...
