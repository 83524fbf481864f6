"""The collector plugins, one per protocol folder (see :mod:`lingtan_collectors.plugin`).

The plugin of protocol ``p`` is ``PLUGIN`` in ``lingtan_collectors/<p>/plugin.py``; a new
protocol adds its folder and nothing else. A plugin is imported when it is first asked for, so
that ``lingtan collect --protocol modbus`` does not load asyncua and paho: a collector
restarted after a crash is polling again as soon as it can.
"""

from __future__ import annotations

import importlib

from lingtan.park.model import Protocol
from lingtan_collectors.plugin import CollectorPlugin


def plugin(protocol: Protocol | str) -> CollectorPlugin:
    """The plugin of ``protocol``."""
    name = Protocol(protocol).value
    found: CollectorPlugin = importlib.import_module(f"lingtan_collectors.{name}.plugin").PLUGIN
    return found


def plugin_for(device) -> CollectorPlugin:
    """The plugin that collects ``device`` (a park-model device of any protocol)."""
    found = plugin(device.protocol)
    if not isinstance(device, found.device_model):
        raise TypeError(f"device {device.id!r}: a {type(device).__name__}, not the {found.device_model.__name__} "
                        f"the {found.protocol.value} plugin collects")
    return found
