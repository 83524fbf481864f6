"""The calc-service's pure core: no InfluxDB, no SQL, no HTTP, no clock, no scheduler.

Each capability of the standard is a subpackage of functions on pandas objects and pydantic
models (pvlib style: units in [brackets] in the docstrings, references to the standards):

* :mod:`~lingtan_calc.core.accounting` — energy (GB/T 2589) and carbon (GB/T 32150/32151) accounting;
* :mod:`~lingtan_calc.core.analysis` — energy analysis and the energy balance (standard §5.2);
* :mod:`~lingtan_calc.core.forecast` — load, renewable and energy/carbon forecasts (§5.3);
* :mod:`~lingtan_calc.core.budget` — energy and carbon budgets (§5.4);
* :mod:`~lingtan_calc.core.dispatch` — optimal dispatch of the park's distributed energy (§5.2);
* :mod:`~lingtan_calc.core.footprint` — product carbon footprints (GB/T 24067, §5.3).

The shipped reference data (factor files, schemas) is read from ``lingtan_calc/data``; the
adapters (:mod:`lingtan_calc.adapters`) do every other read and write.
"""
