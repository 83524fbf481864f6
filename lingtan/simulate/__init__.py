"""Device simulators for the demo park: OPC UA server, Modbus TCP server, MQTT publisher."""
