"""Reads of the accounted energy and emission rows for the analysis (docs/analysis.md).

InfluxQL on the derived series of the ``accounting`` retention policy (docs/schema.md):
``acc_energy`` and ``acc_emission`` rows per entity, meter, carrier, flow and usage, as pandas
frames with the tag columns, ``time`` (the period start, Asia/Shanghai) and the fields.
"""

from __future__ import annotations

import pandas as pd

from lingtan.influxdb import InfluxClient
from lingtan_calc.adapters.derived import RP

TZ = "Asia/Shanghai"
ENERGY_TAGS = ["entity", "enterprise", "unit_id", "meter", "carrier", "flow", "usage"]
EMISSION_TAGS = ["entity", "enterprise", "unit_id", "meter", "carrier", "category", "scope", "usage"]


def _utc(t: pd.Timestamp) -> str:
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _frame(client: InfluxClient, measurement: str, fields: list[str], tags: list[str], where: str,
           start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    select = ", ".join(f'"{f}"' for f in fields)
    group = ", ".join(f'"{t}"' for t in tags)
    q = (f'SELECT {select} FROM "{client.database}"."{RP}"."{measurement}" WHERE {where} '
         f"AND time >= '{_utc(start)}' AND time < '{_utc(end)}' GROUP BY {group}")
    rows = client.rows(q, epoch="ms")
    frame = pd.DataFrame(rows, columns=["time", *tags, *fields])
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True).dt.tz_convert(TZ)
    for f in fields:
        frame[f] = pd.to_numeric(frame[f], errors="coerce").fillna(0.0)
    return frame


def _where(park_id: str, period: str, entity: str | None) -> str:
    cond = f"\"park\" = '{park_id}' AND \"period\" = '{period}'"
    return cond + (f" AND \"entity\" = '{entity}'" if entity is not None else " AND \"entity\" != 'park'")


def energy_rows(client: InfluxClient, park_id: str, period: str, start: pd.Timestamp, end: pd.Timestamp,
                entity: str | None) -> pd.DataFrame:
    """``acc_energy`` rows of one entity (or, with None, of every enterprise) in ``[start, end)``."""
    return _frame(client, "acc_energy", ["quantity", "tce"], ENERGY_TAGS, _where(park_id, period, entity), start, end)


def emission_rows(client: InfluxClient, park_id: str, period: str, start: pd.Timestamp, end: pd.Timestamp,
                  entity: str | None) -> pd.DataFrame:
    """``acc_emission`` rows of one entity (or, with None, of every enterprise) in ``[start, end)``."""
    return _frame(client, "acc_emission", ["tco2", "tco2_market"], EMISSION_TAGS, _where(park_id, period, entity),
                  start, end)
