"""The Modbus TCP collector plugin (polling through pymodbus, docs/architecture.md)."""

from lingtan.park.model import ModbusDevice, Protocol
from lingtan_collectors.modbus.collector import run_modbus
from lingtan_collectors.modbus.simulator import RegisterServer
from lingtan_collectors.modbus.telegraf import telegraf_inputs
from lingtan_collectors.plugin import CollectorPlugin

PLUGIN = CollectorPlugin(Protocol.modbus, ModbusDevice, run_modbus, telegraf_inputs, RegisterServer)
