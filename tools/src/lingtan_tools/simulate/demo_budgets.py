"""The demo park's budgets (``lingtan/data/demo_park.budgets.yaml``), set through the calc API after a
backfill, then the first evaluation of the warnings (docs/demo-park.md, docs/budget.md).

Each month's allocation is the entity's counted consumption per day over the last accounted days,
times the month's days from the first accounted day on, times the file's ``headroom``: the demo
has no target documents, and caps fitted to the simulated consumption (and to the part of the year
the platform has counted) stay plausible whatever the park model. A year that already
has a plan keeps it (the calc-service answers 409).
"""

from __future__ import annotations

import logging
import urllib.error
from collections.abc import Callable
from importlib import resources
from typing import Any

import pandas as pd
import yaml

from lingtan_calc.core.budget import tracking

log = logging.getLogger(__name__)
TZ = "Asia/Shanghai"


def demo_file() -> dict[str, Any]:
    return yaml.safe_load(resources.files("lingtan").joinpath("data/demo_park.budgets.yaml").read_text("utf-8"))


def counted_per_day(rows: list[dict[str, Any]], kind: str) -> float:
    """Mean counted figure per day of ``/api/v1/energy`` or ``/carbon`` day rows [tce/d or tCO₂/d], counted as
    a plan with the dual-control defaults counts (lingtan_calc.core.budget.tracking)."""
    if not rows:
        raise ValueError("no accounted day to set a demo budget from")
    frame = pd.DataFrame(rows).reindex(columns=tracking.totals_fields(kind, tracking.default_counting(kind)))
    return float(tracking.counted(frame.fillna(0.0), kind, tracking.default_counting(kind)).mean())


def covered_days(first: pd.Timestamp, year: int) -> list[int]:
    """Days of each month of ``year`` from ``first`` (the first accounted day) on: the part of the year the
    platform counts. A budget over the whole year would leave January to the go-live month unused on paper
    and ask for several times the real daily rate in the months left."""
    out = []
    for month in range(1, 13):
        start = pd.Timestamp(year=year, month=month, day=1, tz=TZ)
        end = start + pd.offsets.MonthBegin(1)
        out.append(max(0, (end - max(start, first.normalize())).days))
    return out


def seed(call: Callable[..., dict], entities: set[str], now: pd.Timestamp | None = None) -> dict[str, Any]:
    """Set the demo budgets of the current year through ``call(path, body=None, method="GET")`` (those of
    ``entities``, the park's: a simulated park of one's own may lack the demo's enterprises); evaluate."""
    now = pd.Timestamp.now(tz=TZ) if now is None else pd.Timestamp(now).tz_convert(TZ)
    spec = demo_file()
    today = now.normalize()
    start = (today - pd.Timedelta(days=int(spec["basis_days"]))).date().isoformat()
    year_rows = call(f"/api/v1/energy?entity=park&period=day&start={now.year}-01-01&end={today.date().isoformat()}")
    first = min((pd.Timestamp(r["period_start"]) for r in year_rows["rows"]), default=today)
    days = covered_days(first, now.year)
    made, kept = [], []
    for b in (b for b in spec["budgets"] if b["entity"] in entities):
        path = "/api/v1/energy" if b["kind"] == "energy" else "/api/v1/carbon"
        rows = call(f"{path}?entity={b['entity']}&period=day&start={start}&end={today.date().isoformat()}")["rows"]
        per_day = counted_per_day(rows, b["kind"]) * float(b["headroom"])
        monthly = [round(per_day * d, 3) for d in days]
        body = {"entity": b["entity"], "year": now.year, "kind": b["kind"], "annual": round(sum(monthly), 3),
                "rule": "manual", "monthly": monthly, "targets": b.get("targets", []),
                "reason": f"演示园区预算：自 {first.date()} 接入起，每月天数 × 近 {spec['basis_days']} 日日均核算量 × "
                          f"{b['headroom']}"}
        try:
            call("/api/v1/budgets", body, "POST")
            made.append(f"{b['entity']}:{b['kind']}")
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
            kept.append(f"{b['entity']}:{b['kind']}")
    evaluated = call("/api/v1/warnings/evaluate", {}, "POST")
    log.info("demo budgets: set %s, kept %s; %s", made, kept, evaluated.get("warnings"))
    return {"set": made, "kept": kept, "warnings": evaluated.get("warnings")}
