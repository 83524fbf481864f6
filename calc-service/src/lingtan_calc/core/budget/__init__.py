"""Energy and carbon budgets, their tracking and dynamic adjustment (standard §5.4 预算管理).

Pure functions only, like the rest of :mod:`lingtan_calc.core`; empty until its issue lands.
"""
