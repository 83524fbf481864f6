"""Optimal dispatch of the park's distributed energy against the grid (standard §5.2 能源优化调度).

Pure functions only, like the rest of :mod:`lingtan_calc.core`; empty until its issue lands.
"""
