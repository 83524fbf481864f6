"""Conversion efficiency per node of the topology, and load KPIs per production unit.

Efficiencies are ratios of the metered flows of one period (``acc_flow``: ``source``,
``target``, ``carrier``, ``quantity`` [canonical unit], ``tce`` [当量值]). At the 当量值 basis a
tce is a fixed amount of heat (29 307 kJ, GB/T 2589-2020 3.5), so a ratio of tce is a ratio of
energy: 1 kWh of electricity is 3 600 kJ and the steam and heat coefficients are their heat
content (GB/T 2589-2020 Annex A; docs/accounting.md §2).

=================  =========================================================================
boiler             thermal efficiency = heat or steam out / fuel in [tce/tce]
chp                electrical, thermal and total efficiency (GB/T 2589 counts the fuel)
storage            round trip = discharged / charged [kWh/kWh] (over a period long enough that
                   the state of charge at its ends does not matter)
transformer        efficiency = output / input; the loss is the difference (its residual)
chiller            COP = cooling out / electricity in [kWh/kWh]
heat_exchanger     output / input [tce/tce]
=================  =========================================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lingtan.workdays import is_workday

KWH_PER_GJ = 1e6 / 3600.0
HEAT_CARRIERS = frozenset({"steam", "heat"})
#: the night hours whose mean demand is the base load [local hour, inclusive start, exclusive end]
NIGHT_HOURS = (0, 5)


def _sum(flows: pd.DataFrame, field: str, carriers: set[str] | frozenset[str] | None = None) -> float:
    part = flows if carriers is None else flows[flows["carrier"].isin(carriers)]
    return float(part[field].sum(min_count=1)) if len(part) else float("nan")


def _ratio(num: float, den: float) -> float:
    return num / den if den and np.isfinite(den) and np.isfinite(num) else float("nan")


def node_efficiency(kind: str, inflows: pd.DataFrame, outflows: pd.DataFrame) -> dict[str, float]:
    """The efficiency figures of one conversion node of ``kind`` from its edges in and out (see the table above)."""
    if kind == "chp":
        fuel = _sum(inflows, "tce")
        elec = _sum(outflows, "tce", {"electricity"})
        heat = _sum(outflows, "tce", HEAT_CARRIERS)
        electrical, thermal = _ratio(elec, fuel), _ratio(heat, fuel)
        total = np.nansum([electrical, thermal]) if np.isfinite(electrical) or np.isfinite(thermal) else float("nan")
        return {"electrical_efficiency": electrical, "thermal_efficiency": thermal, "total_efficiency": float(total)}
    if kind == "storage":
        return {"round_trip_efficiency": _ratio(_sum(outflows, "quantity"), _sum(inflows, "quantity"))}
    if kind == "transformer":
        into, out = _sum(inflows, "quantity"), _sum(outflows, "quantity")
        return {"efficiency": _ratio(out, into), "loss": into - out, "loss_ratio": _ratio(into - out, into)}
    if kind == "chiller":
        cooling_kwh = _sum(outflows, "quantity", {"cooling"}) * KWH_PER_GJ
        return {"cop": _ratio(cooling_kwh, _sum(inflows, "quantity", {"electricity"}))}
    return {"efficiency": _ratio(_sum(outflows, "tce"), _sum(inflows, "tce"))}  # boiler, heat exchanger


def conversion_efficiencies(flows: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """One row per conversion node with its kind and the figures of :func:`node_efficiency` (NaN when
    an input or output has no measurement in the period)."""
    rows = []
    for node in nodes[nodes["type"] == "conversion"].itertuples():
        inflows, outflows = flows[flows["target"] == node.id], flows[flows["source"] == node.id]
        figures = node_efficiency(node.kind, inflows, outflows)
        rows.append({"node": node.id, "node_name": node.name, "kind": node.kind, **figures})
    return pd.DataFrame(rows)


def load_kpis(hourly_kwh: pd.Series) -> dict[str, float]:
    """Load KPIs of one unit's electricity over a period.

    Parameters
    ----------
    hourly_kwh : pandas.Series
        Energy per hour [kWh], indexed by hour start (tz-aware); an hour's kWh is its mean kW.

    Returns
    -------
    dict
        ``mean_kw``, ``peak_kw``, ``load_factor`` (mean / peak), ``baseload_kw`` (the mean
        demand of the night hours :data:`NIGHT_HOURS`), ``baseload_share`` (base load × hours /
        energy: the part of the energy a flat night floor would use), and ``non_workday_ratio``
        (mean demand on weekends and holidays / on working days; NaN when the period has only one kind).
    """
    s = hourly_kwh.dropna()
    if s.empty:
        raise ValueError("no hourly energy in the period")
    local = pd.DatetimeIndex(s.index).tz_convert("Asia/Shanghai")
    mean, peak = float(s.mean()), float(s.max())
    night = s[(local.hour >= NIGHT_HOURS[0]) & (local.hour < NIGHT_HOURS[1])]
    base = float(night.mean()) if len(night) else float("nan")
    work = is_workday(local.normalize())
    on, off = s[work], s[~work]
    ratio = float(off.mean() / on.mean()) if len(on) and len(off) and on.mean() else float("nan")
    total = float(s.sum())
    return {"mean_kw": mean, "peak_kw": peak, "load_factor": _ratio(mean, peak), "baseload_kw": base,
            "baseload_share": _ratio(base * len(s), total), "non_workday_ratio": ratio}
