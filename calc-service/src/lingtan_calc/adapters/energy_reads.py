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
           start: pd.Timestamp, end: pd.Timestamp, *, missing: float | None = 0.0) -> pd.DataFrame:
    select = ", ".join(f'"{f}"' for f in fields)
    group = ", ".join(f'"{t}"' for t in tags)
    q = (f'SELECT {select} FROM "{client.database}"."{RP}"."{measurement}" WHERE {where} '
         f"AND time >= '{_utc(start)}' AND time < '{_utc(end)}' GROUP BY {group}")
    rows = client.rows(q, epoch="ms")
    frame = pd.DataFrame(rows, columns=["time", *tags, *fields])
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True).dt.tz_convert(TZ)
    for f in fields:
        frame[f] = pd.to_numeric(frame[f], errors="coerce")
        if missing is not None:
            frame[f] = frame[f].fillna(missing)
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


def flow_rows(client: InfluxClient, park_id: str, period: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """``acc_flow`` rows (one per topology edge and period) in ``[start, end)``; ``tce`` NaN where unknown."""
    where = f"\"park\" = '{park_id}' AND \"period\" = '{period}'"
    # a flow without a coefficient has no tce field (docs/schema.md): it stays unknown (NaN), not 0
    return _frame(client, "acc_flow", ["quantity", "tce"], ["source", "target", "carrier", "meter"], where, start, end,
                  missing=None).assign(quantity=lambda f: f["quantity"].fillna(0.0))



def totals_rows(client: InfluxClient, park_id: str, period: str, start: pd.Timestamp, end: pd.Timestamp,
                entity: str, fields: list[str], basis: str) -> pd.DataFrame:
    """``acc_totals`` of one entity (one row per period) at the electricity ``basis`` (dangliang, dengjia)."""
    where = _where(park_id, period, entity) + f" AND \"basis\" = '{basis}'"
    return _frame(client, "acc_totals", fields, ["entity"], where, start, end)


def intensity_rows(client: InfluxClient, park_id: str, period: str, start: pd.Timestamp, end: pd.Timestamp,
                   entity: str) -> pd.DataFrame:
    """``acc_intensity`` of one entity: indicator, product, unit, value, numerator and denominator per period."""
    return _frame(client, "acc_intensity", ["value", "numerator", "denominator"], ["indicator", "product", "unit"],
                  _where(park_id, period, entity), start, end)


def product_energy_rows(client: InfluxClient, park_id: str, period: str, start: pd.Timestamp, end: pd.Timestamp,
                        entity: str | None) -> pd.DataFrame:
    """Per period, entity and product: the energy attributed to the product [tce] (``numerator``) and its
    output (``denominator``, in ``output_unit``), from ``acc_intensity`` ``energy_per_product``."""
    where = _where(park_id, period, entity) + " AND \"indicator\" = 'energy_per_product'"
    frame = _frame(client, "acc_intensity", ["numerator", "denominator"], ["entity", "product", "unit"], where,
                   start, end)
    frame["output_unit"] = [str(u).partition("/")[2] for u in frame["unit"]]  # tce/t -> t
    return frame


def factor_ids(client: InfluxClient, park_id: str, period: str, start: pd.Timestamp, end: pd.Timestamp,
               entity: str) -> set[str]:
    """The ids of every factor the entity's energy and emission rows of the range used."""
    ids: set[str] = set()
    for measurement in ("acc_energy", "acc_emission"):
        q = (f'SELECT "factors" FROM "{client.database}"."{RP}"."{measurement}" WHERE {_where(park_id, period, entity)} '
             f"AND time >= '{_utc(start)}' AND time < '{_utc(end)}'")
        for row in client.rows(q):
            ids |= {i for i in str(row.get("factors") or "").split(",") if i}
    return ids


def bought_per_hour(client: InfluxClient, park_id: str, start: pd.Timestamp, end: pd.Timestamp, entity: str | None,
                    keys: list[str], flow: str = "input") -> pd.DataFrame:
    """Energy bought or received (``flow`` input; or another flow, e.g. export) per hour, entity, ``keys``
    and carrier, summed by InfluxDB.

    The database adds the meters up (``GROUP BY time(1h)``), so a month of a park with a thousand
    meters is a few thousand rows instead of the meters' hourly rows. Hours are whole UTC hours,
    which are whole Asia/Shanghai hours too (UTC+8).
    """
    tags = ["entity", *[k for k in keys if k != "entity"], "carrier"]
    where = _where(park_id, "hour", entity) + f" AND \"flow\" = '{flow}'"
    q = (f'SELECT sum("quantity") AS "quantity" FROM "{client.database}"."{RP}"."acc_energy" WHERE {where} '
         f"AND time >= '{_utc(start)}' AND time < '{_utc(end)}' GROUP BY time(1h), "
         + ", ".join(f'"{t}"' for t in tags) + " fill(none)")
    frame = pd.DataFrame(client.rows(q, epoch="ms"), columns=["time", *tags, "quantity"])
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True).dt.tz_convert(TZ)
    frame["quantity"] = pd.to_numeric(frame["quantity"], errors="coerce").fillna(0.0)
    return frame
