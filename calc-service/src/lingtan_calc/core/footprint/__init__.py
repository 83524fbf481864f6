"""Product carbon footprints per GB/T 24067 (standard §5.3 碳足迹核算).

Pure functions only, like the rest of :mod:`lingtan_calc.core`; empty until its issue lands.
"""
