"""Energy structure (用能结构), key consumers (重点能耗环节) and period comparison (同比/环比).

Pure functions on the accounted energy rows (``acc_energy``: one row per entity, meter,
carrier, flow and usage, with ``quantity`` [canonical unit of the carrier, signed: deductions
negative] and ``tce``). The rows of an entity add up to its energy use (GB/T 2589-2020 ch. 5:
what enters is added, what it supplies to others or exports is deducted), so every share here
is of the same total the accounting reports.

References
----------
GB/T 2589-2020 综合能耗计算通则, ch. 5 (boundary) and ch. 7 (totals); GB/T 23331-2020
(能源管理体系) for the key-consumer analysis (重要能源使用) the Pareto serves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: how a structure may be broken down, and the energy-row column it groups by
BREAKDOWNS = {"carrier": ["carrier"], "enterprise": ["entity"], "unit": ["enterprise", "unit_id"],
              "usage": ["usage"], "flow": ["flow"], "meter": ["enterprise", "unit_id", "meter", "carrier"]}
#: the cumulative share the key consumers make up (the Pareto principle, 80/20)
KEY_SHARE = 0.8


def parent_meters(park) -> dict[str, tuple[str, str, str]]:
    """Sub-meter id -> (enterprise, unit, meter) of its parent meter, from the park model."""
    where = {m.id: (e.id, u.id) for e in park.enterprises for u in e.units for m in u.meters}
    return {m.id: (*where[m.parent], m.parent) for e in park.enterprises for u in e.units for m in u.meters
            if m.parent is not None and m.parent in where}


def attribute_deliveries(energy: pd.DataFrame, parents: dict[str, tuple[str, str, str]]) -> pd.DataFrame:
    """Move each ``delivered`` row to the meter it was delivered through.

    A supplier deducts what it passes on through a customer's sub-meter; the row carries the
    sub-meter (in the customer's unit). For a breakdown by unit or meter the deduction belongs to
    the supplier's meter upstream, ``parents[sub-meter] = (enterprise, unit_id, meter)``, so
    that the customer's unit shows what it used once and the supplier's what it kept.
    """
    delivered = (energy["flow"] == "delivered") & energy["meter"].isin(parents.keys())
    if not delivered.any():
        return energy
    out = energy.copy()
    moved = out.loc[delivered, "meter"].map(parents)
    out.loc[delivered, "enterprise"] = [p[0] for p in moved]
    out.loc[delivered, "unit_id"] = [p[1] for p in moved]
    out.loc[delivered, "meter"] = [p[2] for p in moved]
    return out


def structure(energy: pd.DataFrame, by: str) -> pd.DataFrame:
    """The share of each group in the entity's energy use [tce], with the physical quantity by carrier.

    Parameters
    ----------
    energy : pandas.DataFrame
        Energy rows of one entity and period (columns of :data:`BREAKDOWNS`, ``quantity``, ``tce``).
    by : str
        A key of :data:`BREAKDOWNS`.

    Returns
    -------
    pandas.DataFrame
        The group columns, ``tce`` and ``share`` [0..1 of the total tce]; ``quantity`` [the
        carrier's unit] when the groups are of one carrier each (``carrier``, ``meter``).
        Groups are sorted by tce, largest first. ``share`` is NaN when the total is 0.
    """
    if by not in BREAKDOWNS:
        raise ValueError(f"by {by!r} is not one of {', '.join(BREAKDOWNS)}")
    keys = BREAKDOWNS[by]
    fields = {"tce": ("tce", "sum")}
    if "carrier" in keys:
        fields["quantity"] = ("quantity", "sum")
    out = energy.groupby(keys, as_index=False, dropna=False).agg(**fields)
    total = float(out["tce"].sum())
    out["share"] = out["tce"] / total if total else np.nan
    return out.sort_values("tce", ascending=False, kind="stable").reset_index(drop=True)


def pareto(values: pd.Series, key_share: float = KEY_SHARE) -> pd.DataFrame:
    """Rank consumers by ``values`` (energy, cost or CO₂) and flag those that make up ``key_share``.

    Returns one row per consumer, largest first: ``value``, ``share``, ``cumulative_share``
    and ``key``: True for the consumers that together reach ``key_share`` of the total (the
    one that crosses the line included). Consumers with a value ≤ 0 (net suppliers) are ranked
    last and never key.
    """
    ranked = values.sort_values(ascending=False, kind="stable")
    positive = ranked.clip(lower=0.0)
    total = float(positive.sum())
    share = positive / total if total else positive * np.nan
    cumulative = share.cumsum()
    before = cumulative - share
    key = (before < key_share) & (ranked > 0)
    return pd.DataFrame({"value": ranked, "share": share, "cumulative_share": cumulative, "key": key})


def compare(base: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Two periods side by side: ``base``, ``current``, ``change`` and ``change_ratio`` per key.

    ``change_ratio`` = (current − base) / |base|, NaN where the base is 0 (a change from
    nothing has no ratio). A key missing in one period counts 0 there.
    """
    both = pd.concat([base.rename("base"), current.rename("current")], axis=1).fillna(0.0)
    both["change"] = both["current"] - both["base"]
    with np.errstate(divide="ignore", invalid="ignore"):
        both["change_ratio"] = np.where(both["base"] != 0, both["change"] / both["base"].abs(), np.nan)
    return both


def output_normalised(energy_base: float, output_base: float, energy_current: float, output_current: float) -> dict[str, float]:
    """Compare two periods at the same output: the specific consumption of each and the energy the
    current period would have used at the base period's output.

    ``energy_*`` [tce], ``output_*`` [product unit]. ``normalised_current`` = current specific
    consumption × base output [tce]; its difference to ``energy_base`` is the change that is not
    explained by producing more or less.
    """
    if output_base <= 0 or output_current <= 0:
        raise ValueError(f"output must be > 0 in both periods to normalise (base {output_base}, current {output_current})")
    sec_base, sec_current = energy_base / output_base, energy_current / output_current
    normalised = sec_current * output_base
    return {"specific_base": sec_base, "specific_current": sec_current, "normalised_current": normalised,
            "normalised_change": normalised - energy_base,
            "normalised_change_ratio": (normalised - energy_base) / energy_base if energy_base else float("nan")}


def trend(monthly: pd.Series) -> dict[str, float]:
    """The least-squares trend of a monthly series (e.g. 12 months of tce).

    Returns ``slope`` [unit per month], ``slope_ratio`` (slope / mean, per month), ``r2`` and
    ``months``. Needs at least 3 months; missing months are left out, not filled with 0.
    """
    s = monthly.dropna()
    if len(s) < 3:
        raise ValueError(f"a trend needs at least 3 months with data, got {len(s)}")
    idx = pd.DatetimeIndex(s.index)
    x = (idx.year * 12 + idx.month).to_numpy(dtype=float)
    x -= x[0]
    y = s.to_numpy(dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    fitted = slope * x + intercept
    ss_res, ss_tot = float(((y - fitted) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    mean = float(y.mean())
    return {"slope": float(slope), "slope_ratio": float(slope / mean) if mean else float("nan"),
            "r2": 1.0 - ss_res / ss_tot if ss_tot else 1.0, "months": float(len(s))}
