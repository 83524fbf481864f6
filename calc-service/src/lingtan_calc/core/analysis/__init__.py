"""Energy analysis, energy flow and the energy balance table (standard §5.2 能耗分析, 能流分析).

Pure functions only, like the rest of :mod:`lingtan_calc.core` (docs/analysis.md):
:mod:`~.tariffs` and :mod:`~.cost` (能源成本), :mod:`~.structure` (用能结构, 同比/环比, trend,
重点能耗环节), :mod:`~.balance` (能源平衡表), :mod:`~.efficiency` (conversion efficiency, load
KPIs) and :mod:`~.recommendations` (推荐用能策略).
"""
