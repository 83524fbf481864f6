"""The collector plugins, one per protocol folder (see :mod:`lingtan_collectors.plugin`).

A new protocol adds its folder and one line to :data:`PLUGIN_MODULES`. A plugin is imported
when it is first asked for, so that ``lingtan collect --protocol modbus`` does not load asyncua
and paho: a collector restarted after a crash is polling again as soon as it can.
"""

from __future__ import annotations

import importlib

from lingtan.park.model import Protocol
from lingtan_collectors.plugin import CollectorPlugin

#: the module of each protocol's plugin; it defines ``PLUGIN``
PLUGIN_MODULES: dict[Protocol, str] = {
    Protocol.opcua: "lingtan_collectors.opcua.plugin",
    Protocol.modbus: "lingtan_collectors.modbus.plugin",
    Protocol.mqtt: "lingtan_collectors.mqtt.plugin",
}


def plugin(protocol: Protocol) -> CollectorPlugin:
    """The plugin of ``protocol``."""
    found: CollectorPlugin = importlib.import_module(PLUGIN_MODULES[Protocol(protocol)]).PLUGIN
    return found


def plugin_for(device) -> CollectorPlugin:
    """The plugin that collects ``device`` (a park-model device of any protocol)."""
    found = plugin(device.protocol)
    if not isinstance(device, found.device_model):
        raise TypeError(f"device {device.id!r}: a {type(device).__name__}, not the {found.device_model.__name__} "
                        f"the {found.protocol.value} plugin collects")
    return found
