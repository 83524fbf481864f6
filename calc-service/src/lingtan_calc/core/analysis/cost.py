"""Energy cost (能源成本): hourly energy × tariff, per entity, carrier, time-of-use band and period.

Input is the accounted energy per hour (``acc_energy`` rows with ``period = hour``, or the
same columns from the offline path): what an entity bought or received (``flow`` input) is
what it pays for. Electricity is priced per band with :func:`~lingtan_calc.core.analysis.tariffs.band_shares`,
other carriers at their one price. The demand charge (基本电费) is per calendar month: by
maximum demand, the month's highest hourly mean import [kW] × price (with a contract demand, the
contract plus the doubled excess above 105 % of it), or by capacity, the
charged kVA × price, pro rata for the hours of the month inside the range.

The hourly mean is a lower bound of the 15-minute maximum demand a utility meter bills, so
a demand charge from it is a lower bound too; the result says so in ``basis``.

References
----------
国家发展改革委 发改价格〔2021〕1093号 (分时电价机制), and the tariff file's own sources
(docs/analysis.md §2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lingtan_calc.core.analysis.tariffs import BANDS, TZ, Tariff, band_shares, tariff_for

COST_COLUMNS = ["entity", "carrier", "band", "quantity", "price", "cost", "tariff"]
DEMAND_COLUMNS = ["entity", "month", "basis", "demand_kw", "charged", "price", "cost", "tariff"]


class NoTariffError(LookupError):
    """Energy of an entity on a day that no tariff covers."""


def _tariff_ids(hours: pd.DatetimeIndex, entity: str, tariffs: list[Tariff]) -> np.ndarray:
    """The id of the tariff of each hour (by its local date)."""
    days = hours.tz_convert(TZ).normalize()
    ids = {}
    for day in days.unique():
        t = tariff_for(tariffs, entity, day.date())
        if t is None:
            raise NoTariffError(f"no tariff applies to entity {entity!r} on {day.date()}; "
                                "add one to the tariff file (valid_from, valid_to, applies_to)")
        ids[day] = t.id
    return np.array([ids[d] for d in days], dtype=object)


def energy_cost(hourly: pd.DataFrame, tariffs: list[Tariff], keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """Cost per entity, carrier, band and tariff [CNY].

    Parameters
    ----------
    hourly : pandas.DataFrame
        Columns ``time`` (hour start, tz-aware), ``entity``, ``carrier`` and ``quantity``
        [canonical unit of the carrier: kWh, m3, t, GJ, L]; only bought or received energy.
    tariffs : list of Tariff
    keys : tuple of str
        Further columns of ``hourly`` to cost separately (e.g. ``("unit_id", "meter")``); they
        lead the result's columns.

    Returns
    -------
    pandas.DataFrame
        :data:`COST_COLUMNS`: electricity one row per band with energy in it, other carriers one
        row with ``band`` ""; ``price`` [CNY per unit] is the band's (or carrier's) price.
        A carrier without a price in its tariff is left out (and listed by :func:`unpriced`).
    """
    rows = []
    for entity, part in hourly.groupby("entity", sort=True):
        times = pd.DatetimeIndex(part["time"])
        part = part.assign(tariff=_tariff_ids(times, str(entity), tariffs))
        for group, chunk in part.groupby([*keys, "carrier", "tariff"], sort=True):
            *key_values, carrier, tariff_id = group
            tariff = next(t for t in tariffs if t.id == tariff_id)
            rows += [(*key_values, *row) for row in _carrier_rows(str(entity), str(carrier), chunk, tariff)]
    return pd.DataFrame(rows, columns=[*keys, *COST_COLUMNS])


def _carrier_rows(entity: str, carrier: str, chunk: pd.DataFrame, tariff: Tariff) -> list[tuple]:
    qty = chunk["quantity"].to_numpy(dtype=float)
    if carrier == "electricity":
        shares = band_shares(pd.DatetimeIndex(chunk["time"]), tariff).to_numpy()
        per_band = qty @ shares
        out = []
        for k, band in enumerate(BANDS):
            if band in tariff.electricity.prices and per_band[k] != 0:
                price = tariff.electricity.price(band)
                out.append((entity, carrier, band.value, per_band[k], price, per_band[k] * price, tariff.id))
        return out
    price = tariff.carriers.get(carrier)
    if price is None:
        return []
    total = float(qty.sum())
    return [(entity, carrier, "", total, price, total * price, tariff.id)]


def hourly_prices(hours: pd.DatetimeIndex, entity: str, tariffs: list[Tariff]) -> pd.Series:
    """The electricity energy price of each hour [CNY/kWh]: its bands' prices weighted by their minutes."""
    out = pd.Series(np.nan, index=hours, dtype=float)
    if len(hours) == 0:
        return out
    ids = _tariff_ids(hours, entity, tariffs)
    for tariff_id in set(ids):
        tariff = next(t for t in tariffs if t.id == tariff_id)
        rows = ids == tariff_id
        prices = np.array([tariff.electricity.price(b) if b in tariff.electricity.prices else 0.0 for b in BANDS])
        out[rows] = band_shares(hours[rows], tariff).to_numpy() @ prices
    return out


def unpriced(hourly: pd.DataFrame, tariffs: list[Tariff]) -> list[str]:
    """The carriers (other than electricity) with energy but no price in the tariff that applies."""
    missing = set()
    for entity, part in hourly.groupby("entity"):
        ids = _tariff_ids(pd.DatetimeIndex(part["time"]), str(entity), tariffs)
        for carrier, tariff_id in set(zip(part["carrier"], ids, strict=True)):
            tariff = next(t for t in tariffs if t.id == tariff_id)
            if carrier != "electricity" and carrier not in tariff.carriers:
                missing.add(f"{carrier} ({tariff_id})")
    return sorted(missing)


def demand_charge(hourly_import_kwh: pd.Series, entity: str, tariffs: list[Tariff],
                  start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The demand charge per calendar month of ``[start, end)`` [CNY] (:data:`DEMAND_COLUMNS`).

    ``hourly_import_kwh`` is the entity's electricity bought per hour [kWh], indexed by hour
    start; one hour's kWh is its mean demand [kW]. ``charged`` is the kW (the highest demand
    seen in the part of the month inside the range) or kVA (capacity) charged for the month,
    pro rata for the part of the month inside the range, so that the days of a month add up
    to about the month.
    """
    rows = []
    first = pd.Timestamp(start).tz_convert(TZ).replace(day=1).normalize()
    months = pd.date_range(first, pd.Timestamp(end).tz_convert(TZ), freq="MS", inclusive="left")
    for month in months:
        month_end = month + pd.offsets.MonthBegin(1)
        lo, hi = max(month, pd.Timestamp(start)), min(month_end, pd.Timestamp(end))
        tariff = tariff_for(tariffs, entity, lo.tz_convert(TZ).date())
        if tariff is None or tariff.electricity.demand_charge is None or hi <= lo:
            continue
        charge = tariff.electricity.demand_charge
        fraction = (hi - lo) / (month_end - month)
        inside = hourly_import_kwh[(hourly_import_kwh.index >= lo) & (hourly_import_kwh.index < hi)]
        peak = float(inside.max()) if len(inside) else 0.0
        if charge.basis == "max_demand":
            contract = "contract demand, " if entity in charge.contract_kw else ""
            charged = charge.charged_kw(entity, peak) * fraction
            basis = f"max_demand ({contract}hourly mean: a lower bound of the 15-min billing demand)"
        else:
            charged, basis = float(charge.capacity_kva) * fraction, "capacity"
        rows.append((entity, month.strftime("%Y-%m"), basis, peak, charged, charge.price, charged * charge.price, tariff.id))
    return pd.DataFrame(rows, columns=DEMAND_COLUMNS)


def cost_summary(costs: pd.DataFrame, demand: pd.DataFrame) -> pd.DataFrame:
    """Per entity and carrier: quantity, energy cost, demand cost (electricity), total and average price.

    ``average_price`` is the total cost / quantity [CNY per unit], the demand charge included;
    ``energy_price`` leaves it out.
    """
    if costs.empty:
        return pd.DataFrame(columns=["entity", "carrier", "quantity", "energy_cost", "demand_cost", "cost",
                                     "energy_price", "average_price"])
    out = costs.groupby(["entity", "carrier"], as_index=False).agg(quantity=("quantity", "sum"), energy_cost=("cost", "sum"))
    dem = demand.groupby("entity")["cost"].sum() if not demand.empty else pd.Series(dtype=float)
    is_elec = out["carrier"] == "electricity"
    out["demand_cost"] = np.where(is_elec, out["entity"].map(dem).fillna(0.0), 0.0)
    out["cost"] = out["energy_cost"] + out["demand_cost"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["energy_price"] = np.where(out["quantity"] != 0, out["energy_cost"] / out["quantity"], np.nan)
        out["average_price"] = np.where(out["quantity"] != 0, out["cost"] / out["quantity"], np.nan)
    return out
