"""Energy analysis, energy flow and the energy balance table (standard §5.2 能耗分析, 能流分析).

Pure functions only, like the rest of :mod:`lingtan_calc.core`; empty until its issue lands.
"""
