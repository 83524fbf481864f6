"""The demo park's budgets (``lingtan/data/demo_park.budgets.yaml``), set through the calc API after a
backfill, then the first evaluation of the warnings (docs/demo-park.md, docs/budget.md).

Each cap is the entity's counted consumption per day over the last accounted days, times the
days of the year, times the file's ``headroom``: the demo has no target documents, and caps
fitted to the simulated consumption stay plausible whatever the park model. A year that already
has a plan keeps it (the calc-service answers 409).
"""

from __future__ import annotations

import calendar
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


def seed(call: Callable[..., dict], entities: set[str], now: pd.Timestamp | None = None) -> dict[str, Any]:
    """Set the demo budgets of the current year through ``call(path, body=None, method="GET")`` (those of
    ``entities``, the park's: a simulated park of one's own may lack the demo's enterprises); evaluate."""
    now = pd.Timestamp.now(tz=TZ) if now is None else pd.Timestamp(now).tz_convert(TZ)
    spec = demo_file()
    today = now.normalize()
    start = (today - pd.Timedelta(days=int(spec["basis_days"]))).date().isoformat()
    days_in_year = 366 if calendar.isleap(now.year) else 365
    made, kept = [], []
    for b in (b for b in spec["budgets"] if b["entity"] in entities):
        path = "/api/v1/energy" if b["kind"] == "energy" else "/api/v1/carbon"
        rows = call(f"{path}?entity={b['entity']}&period=day&start={start}&end={today.date().isoformat()}")["rows"]
        annual = round(counted_per_day(rows, b["kind"]) * days_in_year * float(b["headroom"]), 3)
        body = {"entity": b["entity"], "year": now.year, "kind": b["kind"], "annual": annual, "rule": b["rule"],
                "targets": b.get("targets", []),
                "reason": f"演示园区预算：近 {spec['basis_days']} 日核算量 × 全年天数 × {b['headroom']}"}
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
