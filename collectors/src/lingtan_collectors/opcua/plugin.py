"""The OPC UA collector plugin (subscriptions through asyncua, docs/architecture.md)."""

from lingtan.park.model import OpcUaDevice, Protocol
from lingtan_collectors.opcua.collector import run_opcua
from lingtan_collectors.opcua.simulator import OpcUaSimServer
from lingtan_collectors.opcua.telegraf import telegraf_inputs
from lingtan_collectors.plugin import CollectorPlugin

PLUGIN = CollectorPlugin(Protocol.opcua, OpcUaDevice, run_opcua, telegraf_inputs, OpcUaSimServer)
