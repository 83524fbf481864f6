"""Forecasts of load, PV and wind output, and of energy and CO₂ per period (standard §5.3 预测).

Pure functions only, like the rest of :mod:`lingtan_calc.core`; empty until its issue lands.
"""
