"""Lingtan calc-service: energy (GB/T 2589) and carbon (GB/T 32150/32151) accounting.

Three layers, imported one way (docs/architecture.md):

* :mod:`lingtan_calc.core` — pure functions on pandas objects and pydantic models, no I/O;
* :mod:`lingtan_calc.adapters` — InfluxDB (InfluxQL, line protocol) and SQL;
* :mod:`lingtan_calc.service` — the recalculation engine, its scheduler and the Flask API.
"""
