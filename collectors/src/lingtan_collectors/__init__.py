"""Collectors: OPC UA, Modbus and MQTT into InfluxDB (one folder per protocol)."""
