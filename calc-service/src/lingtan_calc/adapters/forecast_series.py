"""Forecast inputs and outputs in InfluxDB (docs/schema.md, "Forecast series").

Inputs are the accounted hourly series of the ``accounting`` retention policy: an entity's
electricity (``acc_carrier``, kWh per hour = mean kW), its comprehensive energy and CO₂
(``acc_totals``) and each PV or wind meter's output (``acc_point``). Outputs go to the same
retention policy:

``forecast_load``        park, entity, model, horizon, issued | mean_kw, lower_kw, upper_kw, lead_h
``forecast_energy``      park, entity, model, horizon, issued | mean_tce, lower_tce, upper_tce, lead_h
``forecast_generation``  park, meter, role, model, horizon, issued | mean_kw, lower_kw, upper_kw, lead_h
``forecast_outturn``     park, entity, quantity, period, model | actual_to_date, forecast_rest, projected,
                         lower, upper (tce or tCO₂), period_start (text)
``forecast_skill``       park, entity, target, model, kind, window | mae, rmse, nrmse, nmbe, skill, n

Each hourly forecast is written twice: under its issue time (``issued`` = ISO time of the
origin, the archive that verification reads) and under ``issued = latest`` (rewritten by every
issue, so a dashboard reads the newest forecast of each hour with one query).
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd

from lingtan.influxdb import InfluxClient
from lingtan.series import line
from lingtan_calc.adapters.derived import RP
from lingtan_calc.adapters.energy_reads import TZ, _frame

LATEST = "latest"
#: the field names of each hourly forecast measurement: (mean, lower, upper)
HOURLY_FIELDS = {"forecast_load": ("mean_kw", "lower_kw", "upper_kw"),
                 "forecast_energy": ("mean_tce", "lower_tce", "upper_tce"),
                 "forecast_generation": ("mean_kw", "lower_kw", "upper_kw")}


def _hourly(frame: pd.DataFrame, value: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """One value per hour on the full hourly grid of [start, end) (NaN where no row)."""
    grid = pd.date_range(start.tz_convert(TZ), end.tz_convert(TZ), freq="h", inclusive="left")
    if frame.empty:
        return pd.Series(float("nan"), index=grid)
    return frame.groupby("time")[value].sum().reindex(grid)


def hourly_load(client: InfluxClient, park_id: str, entity: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """The entity's electricity per hour [kWh = mean kW] (``acc_carrier``); NaN for hours not accounted."""
    where = f"\"park\" = '{park_id}' AND \"period\" = 'hour' AND \"entity\" = '{entity}' AND \"carrier\" = 'electricity'"
    return _hourly(_frame(client, "acc_carrier", ["quantity"], ["entity"], where, start, end, missing=None),
                   "quantity", start, end)


def hourly_totals(client: InfluxClient, park_id: str, entity: str, field: str, start: pd.Timestamp,
                  end: pd.Timestamp) -> pd.Series:
    """An ``acc_totals`` field of the entity per hour (当量值 basis), e.g. comprehensive_tce, total_tco2."""
    where = (f"\"park\" = '{park_id}' AND \"period\" = 'hour' AND \"entity\" = '{entity}' "
             f"AND \"basis\" = 'dangliang'")
    return _hourly(_frame(client, "acc_totals", [field], ["entity"], where, start, end, missing=None), field, start, end)


def hourly_generation(client: InfluxClient, park_id: str, meter: str, start: pd.Timestamp,
                      end: pd.Timestamp) -> pd.Series:
    """A generation meter's output per hour [kWh = mean kW] (``acc_point``, its counter points summed)."""
    where = f"\"park\" = '{park_id}' AND \"period\" = 'hour' AND \"meter\" = '{meter}' AND \"carrier\" = 'electricity'"
    return _hourly(_frame(client, "acc_point", ["quantity"], ["point"], where, start, end, missing=None),
                   "quantity", start, end)


def issued_tag(origin: pd.Timestamp) -> str:
    return pd.Timestamp(origin).tz_convert(TZ).isoformat()


def hourly_lines(measurement: str, tags: dict[str, str], frame: pd.DataFrame, origin: pd.Timestamp,
                 latest: bool = True) -> list[str]:
    """Lines of one hourly forecast (``mean``, ``lower``, ``upper`` per hour), archived and (``latest``) as ``latest``."""
    names = HOURLY_FIELDS[measurement]
    out = []
    for t, row in frame.iterrows():
        fields = {n: float(row[c]) for n, c in zip(names, ("mean", "lower", "upper"), strict=True)
                  if not math.isnan(float(row[c]))}
        if not fields:
            continue
        fields["lead_h"] = float((t - origin) / pd.Timedelta(hours=1))
        for issued in (issued_tag(origin), LATEST) if latest else (issued_tag(origin),):
            out.append(line(measurement, {**tags, "issued": issued}, fields, int(pd.Timestamp(t).value)))
    return out


def outturn_line(park_id: str, entity: str, quantity: str, period: str, period_start: pd.Timestamp,
                 model: str, figures: dict[str, float], at: pd.Timestamp) -> str:
    fields: dict[str, float | str] = {k: float(figures[k]) for k in
                                      ("actual_to_date", "forecast_rest", "projected", "lower", "upper")}
    fields["period_start"] = period_start.isoformat()
    return line("forecast_outturn", {"park": park_id, "entity": entity, "quantity": quantity, "period": period,
                                     "model": model}, fields, int(pd.Timestamp(at).value))


def skill_line(park_id: str, entity: str, target: str, model: str, kind: str, window: str,
               figures: dict[str, float], at: pd.Timestamp) -> str | None:
    fields = {k: float(v) for k, v in figures.items() if k in ("mae", "rmse", "nrmse", "nmbe", "skill", "n")
              and v is not None and not math.isnan(float(v))}
    if not fields:
        return None
    return line("forecast_skill", {"park": park_id, "entity": entity, "target": target, "model": model,
                                   "kind": kind, "window": window}, fields, int(pd.Timestamp(at).value))


def write_forecast_lines(client: InfluxClient, lines: list[str]) -> None:
    """Write to the ``accounting`` retention policy through a client of its own (the shared one is not touched)."""
    if not lines:
        return
    target = dataclasses.replace(client, retention_policy=RP)
    for i in range(0, len(lines), 20_000):
        target.write_lines(lines[i:i + 20_000])


def archived_forecast(client: InfluxClient, measurement: str, where: str, start: pd.Timestamp,
                      end: pd.Timestamp) -> pd.DataFrame:
    """Archived (not ``latest``) hourly forecasts in [start, end): time, issued, model, mean and lead_h."""
    mean = HOURLY_FIELDS[measurement][0]
    frame = _frame(client, measurement, [mean, "lead_h"], ["issued", "model"],
                   where + f" AND \"issued\" != '{LATEST}'", start, end, missing=None)
    return frame.rename(columns={mean: "mean"})


def latest_forecast(client: InfluxClient, measurement: str, where: str, start: pd.Timestamp,
                    end: pd.Timestamp) -> pd.DataFrame:
    """The newest forecast of each hour in [start, end): time, model, mean, lower, upper, lead_h."""
    names = list(HOURLY_FIELDS[measurement])
    frame = _frame(client, measurement, [*names, "lead_h"], ["model"], where + f" AND \"issued\" = '{LATEST}'",
                   start, end, missing=None)
    return frame.rename(columns=dict(zip(names, ("mean", "lower", "upper"), strict=True)))
