"""The one small interface every protocol folder of the collectors implements.

A protocol is a folder ``lingtan_collectors/<protocol>/`` (Telegraf-plugin style: code, README,
sample config, golden tests) whose ``plugin.py`` declares a :class:`CollectorPlugin`:

* ``device_model``: the park-model device it collects (validated with the park file by
  :mod:`lingtan.park.model`, which names every protocol's device and point binding);
* ``run``: collect every device of that protocol in a :class:`~lingtan_collectors.common.runtime.CollectorRuntime`
  until a stop event is set, a coroutine (``asyncio.Event``) or, with ``blocking``, a function
  (``threading.Event``);
* ``telegraf_inputs``: the telegraf.conf fragment of one device (docs/telegraf.md);
* ``simulator``: the protocol's simulated device server, driven by the golden tests, the
  benchmarks and the park simulator (docs/simulator.md).

:mod:`lingtan_collectors.plugins` lists the plugins; ``lingtan collect`` and ``lingtan
telegraf-config`` only go through it (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lingtan.park.index import PointRef
from lingtan.park.model import Park, Protocol
from lingtan.settings import Settings

#: ``(device, its points, park, settings) -> telegraf.conf lines``
TelegrafInputs = Callable[[Any, list[PointRef], Park, Settings], list[str]]


@dataclass(frozen=True)
class CollectorPlugin:
    """What one protocol folder provides."""

    protocol: Protocol
    device_model: type
    run: Callable[..., Any]
    telegraf_inputs: TelegrafInputs
    simulator: type
    blocking: bool = False  # run(runtime, threading.Event) instead of a coroutine run(runtime, asyncio.Event)
