"""Device simulators for the demo park: OPC UA server, Modbus TCP server, MQTT publisher.

See docs/simulator.md. Entry points: :func:`lingtan_tools.simulate.runner.run` (blocking, used
by ``lingtan simulate``), :class:`lingtan_tools.simulate.runner.Simulator` (async, in-process)
and :func:`lingtan_tools.simulate.runner.start_in_thread` (background thread for sync tests).
"""

from lingtan_tools.simulate.faults import Fault, FaultKind
from lingtan_tools.simulate.runner import ALL_PROTOCOLS, Simulator, SimulatorThread, run, start_in_thread

__all__ = ["ALL_PROTOCOLS", "Fault", "FaultKind", "Simulator", "SimulatorThread", "run", "start_in_thread"]
