"""Derived series: accounting results → line protocol in the ``accounting`` retention policy.

Measurements (docs/schema.md, "Derived series"); every point is stamped with the start of its
Asia/Shanghai period and tagged ``period`` = hour, day, month or year, so that rewriting a
period overwrites the same series key and timestamp (idempotent recalculation). Factor ids
are a string *field*, not a tag: a new factor changes the value, never the series key.

``acc_totals``    park, entity, period, basis | comprehensive_tce, feedstock_tce, non_production_tce,
                  renewable_self_tce, scope1_tco2, scope2_tco2, scope2_market_tco2, total_tco2,
                  total_market_tco2, gross_tco2, exported_tco2, net_tco2, biomass_tco2,
                  non_production_tco2, green_kwh
``acc_carrier``   park, entity, carrier, unit, period | quantity, tce, factors
``acc_energy``    park, entity, enterprise, unit_id, meter, carrier, flow, usage, period | quantity, tce, factors
``acc_emission``  park, entity, enterprise, unit_id, meter, carrier, category, scope, usage, period | quantity, tco2, tco2_market,
                  factors
``acc_intensity`` park, entity, indicator, product, period | value, numerator, denominator, factors (unit tag)
``acc_flow``      park, source, target, carrier, meter, period | quantity, tce
``acc_node``      park, node, kind, period | input_tce, output_tce, loss_tce
``acc_point``     park, enterprise, unit_id, meter, point, carrier, role, period | quantity, events
                  (every energy point's own consumption, as accounted: the one source of per-meter
                  figures for the portal and the API)

Quarantined intervals (consumption above a meter's capacity) are also written to the raw
``data_quality`` measurement with reason ``implausible_consumption`` (:func:`quarantine_line`).
"""

from __future__ import annotations

import math

import pandas as pd

from lingtan.park.carriers import Kind, canonical_unit
from lingtan.park.index import PointRef
from lingtan.series import DATA_QUALITY, line
from lingtan_calc.core.accounting.results import Accounts

RP = "accounting"
#: data_quality reason of an interval quarantined for exceeding the meter's capacity
IMPLAUSIBLE = "implausible_consumption"
TOTAL_FIELDS = ["comprehensive_tce", "feedstock_tce", "non_production_tce", "renewable_self_tce", "scope1_tco2",
                "scope2_tco2", "scope2_market_tco2", "total_tco2", "total_market_tco2", "gross_tco2", "exported_tco2",
                "net_tco2", "biomass_tco2", "non_production_tco2", "green_kwh"]


def _ns(t) -> int:
    return int(pd.Timestamp(t).value)


def _fields(row, names) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for n in names:
        v = row[n]
        if isinstance(v, str):
            out[n] = v
        elif v is not None and not (isinstance(v, float) and math.isnan(v)):
            out[n] = float(v)
    return out


def _tags(**kw) -> dict[str, str]:
    return {k: str(v) for k, v in kw.items() if v is not None and str(v) != ""}


def accounts_lines(acc: Accounts, park_id: str, period: str, basis: str = "dangliang") -> list[str]:
    """Line protocol for every row of ``acc`` (totals, carriers, sources, intensities)."""
    out: list[str] = []
    for r in acc.totals.to_dict(orient="records"):
        out.append(line("acc_totals", _tags(park=park_id, entity=r["entity"], period=period, basis=basis),
                        _fields(r, TOTAL_FIELDS), _ns(r["period"])))
    for r in acc.by_carrier.to_dict(orient="records"):
        out.append(line("acc_carrier", _tags(park=park_id, entity=r["entity"], carrier=r["carrier"], unit=r["quantity_unit"],
                                             period=period), _fields(r, ["quantity", "tce", "factors"]), _ns(r["period"])))
    energy = acc.energy.groupby(["period", "entity", "enterprise", "unit", "meter", "carrier", "flow", "usage"],
                                as_index=False, dropna=False).agg(quantity=("quantity", "sum"), tce=("tce", "sum"),
                                                                  factors=("energy_factors", "first"))
    for r in energy.to_dict(orient="records"):
        out.append(line("acc_energy", _tags(park=park_id, entity=r["entity"], enterprise=r["enterprise"],
                                            unit_id=r["unit"], meter=r["meter"], carrier=r["carrier"],
                                            flow=r["flow"], usage=r["usage"], period=period),
                        _fields(r, ["quantity", "tce", "factors"]), _ns(r["period"])))
    if not acc.emissions.empty:
        em = acc.emissions.groupby(["period", "entity", "enterprise", "unit", "meter", "carrier", "category", "scope",
                                    "usage"],
                                   as_index=False, dropna=False).agg(
            quantity=("quantity", "sum"), tco2=("tco2", "sum"), tco2_market=("tco2_market", "sum"),
            factors=("emission_factors", "first"))
        for r in em.to_dict(orient="records"):
            out.append(line("acc_emission", _tags(park=park_id, entity=r["entity"], enterprise=r["enterprise"],
                                                  unit_id=r["unit"], meter=r["meter"], carrier=r["carrier"],
                                                  category=r["category"], scope=r["scope"], usage=r["usage"],
                                                  period=period),
                            _fields(r, ["quantity", "tco2", "tco2_market", "factors"]), _ns(r["period"])))
    for r in acc.intensities.to_dict(orient="records"):
        out.append(line("acc_intensity", _tags(park=park_id, entity=r["entity"], indicator=r["indicator"],
                                               product=r["product"] or None, unit=r["unit"], period=period),
                        _fields(r, ["value", "numerator", "denominator", "factors"]), _ns(r["period"])))
    return out


POINT_TAGS = ["enterprise", "unit_id", "meter", "point", "carrier", "role"]


def point_lines(points: pd.DataFrame, park_id: str, period: str) -> list[str]:
    """``acc_point`` lines from per-point rows (period, enterprise, unit, meter, point, carrier, role,
    quantity, events)."""
    out = []
    for r in points.to_dict(orient="records"):
        out.append(line("acc_point", _tags(park=park_id, enterprise=r["enterprise"], unit_id=r["unit"],
                                           meter=r["meter"], point=r["point"], carrier=r["carrier"],
                                           role=r.get("role") or None, period=period),
                        {"quantity": float(r["quantity"]), "events": _count(r.get("events"))}, _ns(r["period"])))
    return out


def _count(v) -> int:
    """An event count; the bulk path has none (0), and NaN is none."""
    return 0 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def quarantine_line(ref: PointRef, q: dict, status: str = "quarantined") -> str:
    """The ``data_quality`` line of a quarantined interval, stamped at its end (one per interval)."""
    unit = canonical_unit(ref.carrier, Kind.counter)
    seconds = (pd.Timestamp(q["end"]) - pd.Timestamp(q["start"])).total_seconds()
    detail = (f"{q['measured']:.6g} {unit} in {seconds:.0f} s from {pd.Timestamp(q['start']).tz_convert('Asia/Shanghai').isoformat()} exceeds "
              f"the {q['limit']:.6g} {unit} the meter's capacity allows; excluded until confirmed or corrected")
    tags = {"park": ref.park_id, "enterprise": ref.enterprise.id, "meter": ref.meter.id, "point": ref.id,
            "protocol": ref.protocol.value, "device": ref.device_id, "reason": IMPLAUSIBLE}
    fields: dict[str, float | int | str] = {"count": 1, "value": float(q["measured"]), "limit": float(q["limit"]),
                                            "status": status, "detail": detail[:500]}
    return line(DATA_QUALITY, tags, fields, _ns(q["end"]))


def flow_lines(flows: pd.DataFrame, nodes: pd.DataFrame, park_id: str, period: str) -> list[str]:
    out = []
    for r in flows.to_dict(orient="records"):
        out.append(line("acc_flow", _tags(park=park_id, source=r["source"], target=r["target"], carrier=r["carrier"],
                                          meter=r["meter"], period=period),
                        _fields(r, ["quantity", "tce"]), _ns(r["period"])))
    for r in nodes.to_dict(orient="records"):
        fields = _fields(r, ["input_tce", "output_tce", "loss_tce"])
        if fields:  # a node whose flows all lack a coefficient has nothing to write in tce
            out.append(line("acc_node", _tags(park=park_id, node=r["node"], kind=r["kind"], period=period),
                            fields, _ns(r["period"])))
    return out
