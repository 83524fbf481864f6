"""Device simulators for the demo park: OPC UA server, Modbus TCP server, MQTT publisher.

See docs/simulator.md. Entry points: :func:`lingtan_tools.simulate.runner.run` (blocking, used
by ``lingtan simulate``), :class:`lingtan_tools.simulate.runner.Simulator` (async, in-process)
and :func:`lingtan_tools.simulate.runner.start_in_thread` (background thread for sync tests).

The names below load on first use (PEP 562), so that ``lingtan``'s parser, which imports this
package's ``cli`` module, does not load pvlib and the servers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Fault": "lingtan_tools.simulate.faults", "FaultKind": "lingtan_tools.simulate.faults",
    "ALL_PROTOCOLS": "lingtan_tools.simulate.runner", "Simulator": "lingtan_tools.simulate.runner",
    "SimulatorThread": "lingtan_tools.simulate.runner", "run": "lingtan_tools.simulate.runner",
    "start_in_thread": "lingtan_tools.simulate.runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
