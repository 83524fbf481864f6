"""Collectors: OPC UA, Modbus and MQTT into InfluxDB.

One folder per protocol, each a :class:`~lingtan_collectors.plugin.CollectorPlugin` (listed in
:mod:`lingtan_collectors.plugins`); the shared runtime, quality checks, sink and WAL are in
:mod:`lingtan_collectors.common`; :mod:`lingtan_collectors.telegraf` generates telegraf.conf.
"""
