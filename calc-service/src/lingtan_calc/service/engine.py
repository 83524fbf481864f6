"""The calc-service's calculation runs: hours from raw readings, longer periods as sums of hours.

Only an hour is computed from raw counter readings (:mod:`lingtan_calc.adapters.metered`). A day is
the sum of its hours' accounted rows, a month the sum of its days, a year the sum of its
months, read back from the ``accounting`` retention policy with server-side ``sum()``; so
the periods add up exactly, and a month costs a few small queries rather than a month of
raw data. Totals and intensities of every period are then derived from its rows
(:func:`lingtan_calc.core.accounting.results.summarise`), with the production data of that period.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd

from lingtan.influxdb import InfluxClient
from lingtan.park.carriers import CARRIER_UNITS, Carrier, Kind
from lingtan.park.index import iter_points
from lingtan.park.model import Park
from lingtan_calc.adapters.derived import (
    POINT_TAGS,
    RP,
    accounts_lines,
    flow_lines,
    point_lines,
    quarantine_line,
)
from lingtan_calc.adapters.metered import counter_points, quantities, read_counters, read_hourly, read_rates
from lingtan_calc.core.accounting.boundary import PARK_ENTITY, boundary_rules, energy_points, ledger
from lingtan_calc.core.accounting.consumption import period_starts
from lingtan_calc.core.accounting.convert import AccountingOptions
from lingtan_calc.core.accounting.factors import FactorLibrary
from lingtan_calc.core.accounting.flows import edge_points, energy_flows
from lingtan_calc.core.accounting.plausibility import Adjustments
from lingtan_calc.core.accounting.results import Accounts, account, summarise

log = logging.getLogger(__name__)
TZ = "Asia/Shanghai"
PERIODS = ("hour", "day", "month", "year")
#: a recalculation longer than this reads one reading per hour and point in bulk (read_hourly)
BULK_AFTER = pd.Timedelta(days=3)
_CHILD = {"day": "hour", "month": "day", "year": "month"}
_ENERGY_TAGS = ["entity", "enterprise", "unit_id", "meter", "carrier", "flow", "usage"]
_EMISSION_TAGS = ["entity", "enterprise", "unit_id", "meter", "carrier", "category", "scope", "usage"]


def next_start(start: pd.Timestamp, period: str) -> pd.Timestamp:
    start = pd.Timestamp(start).tz_convert(TZ)
    if period == "hour":
        return start + pd.Timedelta(hours=1)
    if period == "day":
        return start + pd.Timedelta(days=1)
    if period == "month":
        return start + pd.offsets.MonthBegin(1)
    return start + pd.offsets.YearBegin(1)


def period_start(t: pd.Timestamp, period: str) -> pd.Timestamp:
    return period_starts(pd.DatetimeIndex([pd.Timestamp(t)]), period)[0]


@dataclass
class RunLog:
    """What one calculation run did (the service keeps the recent ones for /api/v1/recalc)."""

    period: str
    start: pd.Timestamp
    end: pd.Timestamp
    reason: str
    lines: int = 0
    seconds: float = 0.0
    entities: int = 0
    changed: list[str] = field(default_factory=list)  # entity: old -> new comprehensive tce
    error: str = ""
    quarantined: list[dict] = field(default_factory=list)  # intervals above a meter's capacity
    bulk: bool = False  # hours from the bulk read: not every reading was looked at


class ParkCalculator:
    """Computes and writes the derived series of one park."""

    def __init__(self, park: Park, client: InfluxClient, lib: FactorLibrary,
                 options: AccountingOptions | None = None, *, bucket: str | None = "1m",
                 raw_policy: str = "raw"):
        self.park = park
        self.client = client
        self.lib = lib
        self.options = options or AccountingOptions(grid_region=park.park.grid_region)
        self.bucket = bucket
        self.raw_policy = raw_policy
        self.rules = boundary_rules(park)
        # every energy point: the counted ones, the topology's, and those only shown (CHP, storage)
        wanted = {p.id for e in park.enterprises for u in e.units for m in u.meters for p in energy_points(m)}
        wanted |= set(self.rules["point"]) | set(edge_points(park)["point"])
        self.refs = counter_points(iter_points(park), wanted)
        self.rate_refs = [r for r in iter_points(park) if r.id in wanted and r.point.kind is Kind.rate]
        self.by_id = {r.id: r for r in self.refs + self.rate_refs}
        #: replacements, confirmations, corrections and open quarantines (set by the service from SQL)
        self.adjustments = Adjustments()
        self._warned: set[str] = set()
        #: production, process and green-power data per period (set by the service from SQL)
        self.production: pd.DataFrame | None = None
        self.process: pd.DataFrame | None = None
        self.green: pd.DataFrame | None = None

    # ------------------------------------------------------------------ hours from raw readings
    def hour_quantities(self, start: pd.Timestamp, end: pd.Timestamp,
                        quarantined: list[dict] | None = None) -> pd.DataFrame:
        """Consumption per point and hour for hours starting in [start, end), from raw readings;
        intervals above a meter's capacity are appended to ``quarantined``."""
        readings = read_counters(self.client, self.refs, start, end, self.raw_policy, self.bucket)
        refs = self.refs
        if self.rate_refs:
            readings.update(read_rates(self.client, self.rate_refs, start, end, self.raw_policy, self.bucket or "1m"))
            refs = refs + self.rate_refs
        return quantities(readings, refs, "hour", start, end, adjustments=self.adjustments, quarantined=quarantined)

    def run_hours(self, start: pd.Timestamp, end: pd.Timestamp, reason: str = "schedule",
                  scope: str | None = None) -> RunLog:
        """Recompute and write the hours starting in [start, end) from raw readings."""
        t0 = time.perf_counter()
        quarantined: list[dict] = []
        run = self._write_hours(self.hour_quantities(start, end, quarantined), start, end, reason, scope)
        self._report(quarantined, run)
        run.seconds = time.perf_counter() - t0  # including the read
        return run

    def _report(self, quarantined: list[dict], run: RunLog) -> None:
        """Record quarantined intervals in ``data_quality`` (idempotent: one line per interval)."""
        if not quarantined:
            return
        run.quarantined += quarantined
        self.client.write_lines([quarantine_line(self.by_id[q["point"]], q) for q in quarantined])

    # ------------------------------------------------------------------ longer periods as sums
    def rollup(self, period: str, start: pd.Timestamp, reason: str = "schedule", scope: str | None = None) -> RunLog:
        """Recompute one day, month or year from the sums of its child periods."""
        t0 = time.perf_counter()
        start = period_start(start, period)
        end = next_start(start, period)
        run = RunLog(period, start, end, reason)
        child = _CHILD[period]
        before = self._totals(period, start, end)
        energy = self._sum_rows("acc_energy", _ENERGY_TAGS, ["quantity", "tce"], "factors", child, start, end)
        points = self._sum_rows("acc_point", POINT_TAGS, ["quantity", "events"], None, child, start, end)
        if energy.empty and points.empty:
            run.seconds = time.perf_counter() - t0
            return run
        meters = point_lines(points.rename(columns={"unit_id": "unit"}), self.park.park.id, period) \
            + self._rolled_flows(period, child, start, end) if scope in (None, PARK_ENTITY) else []
        if energy.empty:  # nothing counted, only the meters' own series
            self._write(meters)
            run.lines, run.seconds = len(meters), time.perf_counter() - t0
            return run
        energy = energy.rename(columns={"unit_id": "unit", "factors": "energy_factors"})
        energy["quantity_unit"] = [CARRIER_UNITS[Carrier(c)].counter for c in energy["carrier"]]
        emissions = self._sum_rows("acc_emission", _EMISSION_TAGS, ["quantity", "tco2", "tco2_market"], "factors",
                                   child, start, end)
        emissions = emissions.rename(columns={"unit_id": "unit", "factors": "emission_factors"})
        emissions["scope"] = emissions["scope"].astype(int)
        emissions["market_factors"] = emissions["emission_factors"]
        acc = summarise(energy, emissions, self.lib, self.options, process=_within(self.process, start, end, period),
                        green_kwh=_within(self.green, start, end, period),
                        production=_within(self.production, start, end, period),
                        renewable_self=self._renewable_self(child, start, end))
        acc = _scoped(acc, scope)
        lines = accounts_lines(acc, self.park.park.id, period, self.options.electricity_basis)
        lines += meters
        self._write(lines)
        run.lines, run.entities = len(lines), acc.totals["entity"].nunique()
        run.changed = _changes(before, acc.totals)
        run.seconds = time.perf_counter() - t0
        return run

    def _write_hours(self, q: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, reason: str,
                     scope: str | None) -> RunLog:
        """Account and write precomputed per-point hourly quantities."""
        t0 = time.perf_counter()
        run = RunLog("hour", start, end, reason)
        before = self._totals("hour", start, end)
        acc = _scoped(account(ledger(self.rules, q), self.lib, self.options), scope)
        for w in set(acc.warnings) - self._warned:  # a factor choice to tell the park about, once
            log.warning("accounting: %s", w)
            self._warned.add(w)
        lines = accounts_lines(acc, self.park.park.id, "hour", self.options.electricity_basis)
        if scope in (None, PARK_ENTITY):
            flows, nodes = energy_flows(self.park, q, self.lib, self.options)
            lines += flow_lines(flows, nodes, self.park.park.id, "hour")
            lines += point_lines(self._point_rows(q), self.park.park.id, "hour")
        self._write(lines)
        run.lines, run.entities = len(lines), acc.totals["entity"].nunique()
        run.changed = _changes(before, acc.totals)
        run.seconds = time.perf_counter() - t0
        return run

    def _point_rows(self, q: pd.DataFrame) -> pd.DataFrame:
        """Per-point quantities with the tags of ``acc_point``."""
        refs = [self.by_id[p] for p in q["point"]]
        return q.assign(enterprise=[r.enterprise.id for r in refs], unit=[r.unit.id for r in refs],
                        meter=[r.meter.id for r in refs], carrier=[r.carrier.value for r in refs],
                        role=[r.point.role.value if r.point.role else "" for r in refs])

    def bulk_hours(self, start: pd.Timestamp, end: pd.Timestamp, reason: str, scope: str | None = None) -> list[RunLog]:
        """Hours of a long range from one bulk read (:func:`read_hourly`), written a day at a time.

        The hours the bulk read cannot account exactly (a counter event, a quarantine, a person's
        decision) are recomputed from every reading, so both paths give the same answer."""
        q_all, flagged = read_hourly(self.client, self.refs + self.rate_refs, start, end, self.raw_policy,
                                     adjustments=self.adjustments)
        quarantined: list[dict] = []
        for a, b in _runs(flagged, max_hours=24):
            exact = self.hour_quantities(a, b, quarantined)
            q_all = pd.concat([q_all[(q_all["period"] < a) | (q_all["period"] >= b)], exact], ignore_index=True)
        runs = []
        t = start
        while t < end:
            u = min(end, t + pd.Timedelta(days=1))
            q = q_all[(q_all["period"] >= t) & (q_all["period"] < u)]
            runs.append(self._write_hours(q, t, u, reason + " (bulk)", scope))
            runs[-1].bulk = True
            t = u
        if runs:
            self._report(quarantined, runs[0])
        return runs

    def recalculate(self, start: pd.Timestamp, end: pd.Timestamp, reason: str,
                    scope: str | None = None, bulk_after: pd.Timedelta = BULK_AFTER) -> list[RunLog]:
        """Recompute every hour in [start, end), then each day, month and year they touch.

        ``scope`` (an enterprise id or ``park``) limits what is rewritten to that entity's
        series. The calculation itself always covers the park: an enterprise's figures depend
        on its suppliers' and customers' meters (deliveries are deducted from one and added to
        the other), so they are computed together and only the scope's rows are written.
        """
        start, end = period_start(start, "hour"), period_start(end - pd.Timedelta(1, "ns"), "hour") + pd.Timedelta(hours=1)
        runs = []
        if end - start > bulk_after:
            # long ranges: one reading per hour and point, read in month queries (see read_hourly)
            runs += self.bulk_hours(start, end, reason, scope)
        else:
            t = start
            while t < end:  # a day of hours per query keeps each response small
                u = min(end, t + pd.Timedelta(days=1))
                runs.append(self.run_hours(t, u, reason, scope))
                t = u
        for period in ("day", "month", "year"):
            p = period_start(start, period)
            while p < end:
                runs.append(self.rollup(period, p, reason, scope))
                p = next_start(p, period)
        return runs

    # ------------------------------------------------------------------ InfluxDB
    def _write(self, lines: list[str]) -> None:
        rp = self.client.retention_policy
        self.client.retention_policy = RP
        try:
            for i in range(0, len(lines), 20_000):
                self.client.write_lines(lines[i:i + 20_000])
        finally:
            self.client.retention_policy = rp

    def _sum_rows(self, measurement: str, tags: list[str], fields: list[str], text_field: str | None, child: str,
                  start: pd.Timestamp, end: pd.Timestamp, where: str = "") -> pd.DataFrame:
        selects = [f'sum("{f}") AS "{f}"' for f in fields] + ([f'last("{text_field}") AS "{text_field}"']
                                                               if text_field else [])
        group = ", ".join(f'"{t}"' for t in tags)
        q = (f'SELECT {", ".join(selects)} FROM "{self.client.database}"."{RP}"."{measurement}" '
             f"WHERE \"park\" = '{self.park.park.id}' AND \"period\" = '{child}' {where}"
             f"AND time >= '{_utc(start)}' AND time < '{_utc(end)}' GROUP BY {group}")
        columns = ["period", *tags, *fields, *([text_field] if text_field else [])]
        rows = self.client.rows(q, epoch="ns")
        if not rows:
            return pd.DataFrame(columns=columns)
        df = pd.DataFrame(rows).drop(columns="time")
        for t in tags:
            if t not in df:
                df[t] = ""
        df["period"] = start
        return df[columns]

    def _rolled_flows(self, period: str, child: str, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
        """The topology flows and conversion nodes of a period: the sums of its child periods' (the balance
        table and the Sankey read them, docs/analysis.md)."""
        flows = self._sum_rows("acc_flow", ["source", "target", "carrier", "meter"], ["quantity", "tce"], None,
                               child, start, end)
        nodes = self._sum_rows("acc_node", ["node", "kind"], ["input_tce", "output_tce", "loss_tce"], None,
                               child, start, end)
        return flow_lines(flows, nodes, self.park.park.id, period)

    def _renewable_self(self, child: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        """Self-consumed renewables of a period: the sum of its child periods' (balanced per hour)."""
        sums = self._sum_rows("acc_totals", ["entity"], ["renewable_self_tce"], None, child, start, end,
                              where=f"AND \"basis\" = '{self.options.electricity_basis}' ")
        if sums.empty:
            return pd.Series(dtype=float, index=pd.MultiIndex.from_arrays([[], []], names=["period", "entity"]))
        return sums.set_index(["period", "entity"])["renewable_self_tce"].astype(float)

    def _totals(self, period: str, start: pd.Timestamp, end: pd.Timestamp) -> dict[tuple[str, str], float]:
        q = (f'SELECT "comprehensive_tce" FROM "{self.client.database}"."{RP}"."acc_totals" '
             f"WHERE \"park\" = '{self.park.park.id}' AND \"period\" = '{period}' "
             f"AND time >= '{_utc(start)}' AND time < '{_utc(end)}' GROUP BY \"entity\"")
        try:
            return {(r["entity"], str(r["time"])): r["comprehensive_tce"] for r in self.client.rows(q, epoch="ns")}
        except Exception:  # the measurement does not exist yet
            return {}


def _scoped(acc: Accounts, scope: str | None) -> Accounts:
    """Only the rows of entity ``scope`` (all rows for None)."""
    if scope is None:
        return acc

    def keep(df: pd.DataFrame) -> pd.DataFrame:
        return df[df["entity"] == scope] if "entity" in df else df

    return Accounts(keep(acc.energy), keep(acc.emissions), keep(acc.totals), keep(acc.by_carrier),
                    keep(acc.intensities))


def _runs(hours: list[pd.Timestamp], max_hours: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Contiguous runs of hour starts, as [start, end) ranges of at most ``max_hours``."""
    out: list[list[pd.Timestamp]] = []
    for h in sorted(hours):
        if out and h == out[-1][1] and (h - out[-1][0]) < pd.Timedelta(hours=max_hours):
            out[-1][1] = h + pd.Timedelta(hours=1)
        else:
            out.append([h, h + pd.Timedelta(hours=1)])
    return [(a, b) for a, b in out]


def _utc(t: pd.Timestamp) -> str:
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _within(df: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp, period: str) -> pd.DataFrame | None:
    """Rows of a production/process/green frame recorded for exactly this period."""
    if df is None or df.empty:
        return None
    sel = df[(df["period"] >= start) & (df["period"] < end) & (df.get("period_type", period) == period)]
    return sel.assign(period=start) if not sel.empty else None


def _changes(before: dict[tuple[str, str], float], totals: pd.DataFrame) -> list[str]:
    out = []
    for r in totals.to_dict(orient="records"):
        key = (r["entity"], str(int(pd.Timestamp(r["period"]).value)))
        old = before.get(key)
        new = r["comprehensive_tce"]
        if old is None or abs(old - new) > 1e-9 * max(1.0, abs(new)):
            out.append(f"{r['entity']} {pd.Timestamp(r['period']).isoformat()}: "
                       f"{'-' if old is None else f'{old:.6g}'} -> {new:.6g} tce")
    return out
