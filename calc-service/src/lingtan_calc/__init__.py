"""Lingtan calc-service: energy (GB/T 2589) and carbon (GB/T 32150/32151) accounting.

The pure calculation core (units, factors, consumption, accounting, inventories) has no
I/O; the Flask service and scheduler around it read InfluxDB and write the derived series.
"""
