"""The one small interface every protocol folder of the collectors implements.

A protocol is a folder ``lingtan_collectors/<protocol>/`` (Telegraf-plugin style: code, README,
sample config, golden tests). Its ``model.py`` declares the park-model device and point
binding (registered with :mod:`lingtan.park.protocols` by :mod:`lingtan_collectors.protocols`),
and its ``plugin.py`` a :class:`CollectorPlugin`:

* ``device_model``: the park-model device it collects;
* ``run``: collect every device of that protocol in a :class:`~lingtan_collectors.common.runtime.CollectorRuntime`
  until a stop event is set, a coroutine (``asyncio.Event``) or, with ``blocking``, a function
  (``threading.Event``);
* ``telegraf_inputs``: the telegraf.conf fragment of one device (docs/telegraf.md), and
  ``telegraf_converts``: whether that input converts a point to its canonical unit itself;
* ``simulator``: the protocol's simulated device server, driven by the golden tests and the
  benchmarks; ``park_server_key`` and ``park_server``: the servers the park simulator runs
  for the demo park, one per endpoint (docs/simulator.md).

:mod:`lingtan_collectors.plugins` finds the plugins; ``lingtan collect``, ``lingtan
telegraf-config`` and ``lingtan simulate`` only go through it (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from lingtan.park.index import PointRef
from lingtan.park.model import Park, Protocol
from lingtan.settings import Settings
from lingtan_collectors.common.simulation import ParkSimContext, ParkSimServer

#: ``(device, its points, park, settings) -> telegraf.conf lines``
TelegrafInputs = Callable[[Any, list[PointRef], Park, Settings], list[str]]
#: ``(device, settings) -> the endpoint it is served at``: devices with equal keys share a server
ParkServerKey = Callable[[Any, Settings], Hashable]
#: ``(endpoint key, its devices, context) -> the simulated server``
ParkServerFactory = Callable[[Any, list[Any], ParkSimContext], ParkSimServer]


@dataclass(frozen=True)
class CollectorPlugin:
    """What one protocol folder provides."""

    protocol: Protocol
    device_model: type
    run: Callable[..., Any]
    telegraf_inputs: TelegrafInputs
    simulator: type
    park_server_key: ParkServerKey
    park_server: ParkServerFactory
    blocking: bool = False  # run(runtime, threading.Event) instead of a coroutine run(runtime, asyncio.Event)
    # True when the Telegraf input converts the point to its canonical unit itself; None: only
    # points already in their canonical unit (scale 1, offset 0, factor 1) need no conversion
    telegraf_converts: Callable[[PointRef], bool] | None = None
