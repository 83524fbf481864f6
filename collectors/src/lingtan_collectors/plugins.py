"""The collector plugins, one per protocol folder (see :mod:`lingtan_collectors.plugin`).

A new protocol adds its folder and one line here.
"""

from __future__ import annotations

from lingtan.park.model import Protocol
from lingtan_collectors.modbus.plugin import PLUGIN as MODBUS
from lingtan_collectors.mqtt.plugin import PLUGIN as MQTT
from lingtan_collectors.opcua.plugin import PLUGIN as OPCUA
from lingtan_collectors.plugin import CollectorPlugin

PLUGINS: dict[Protocol, CollectorPlugin] = {p.protocol: p for p in (OPCUA, MODBUS, MQTT)}


def plugin_for(device) -> CollectorPlugin:
    """The plugin that collects ``device`` (a park-model device of any protocol)."""
    for plugin in PLUGINS.values():
        if isinstance(device, plugin.device_model):
            return plugin
    raise LookupError(f"device {getattr(device, 'id', device)!r}: no collector plugin for {type(device).__name__}")
