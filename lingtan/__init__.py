"""Lingtan (零碳): energy-and-carbon management for zero-carbon industrial parks.

This package is the shared core that every service and tool builds on: the park model and
its counter rules (:mod:`lingtan.park`), the series schema (:mod:`lingtan.series`), the
InfluxDB v1 client (:mod:`lingtan.influxdb`), settings, the database, JSON errors, uploaded
tables and the ``lingtan`` command dispatcher. It imports no service (docs/architecture.md).
"""

__version__ = "0.1.0"
