"""The running calc-service: its state, the schedule and the recalculation jobs.

Schedule (every ``calc_interval_s``, 60 s by default):

* the current hour, from its start to now, and the day, month and year that contain it;
* in the first 10 minutes of an hour, the hour that just closed (its last readings may still
  be on their way);
* every 15 minutes, the last 6 hours (a collector's disk buffer replays late data in order;
  six hours of recomputation covers an InfluxDB or network outage of that length);
* once a day after 00:15, the two previous days; then the day's forecasts (docs/forecast.md),
  the budgets and warnings (docs/budget.md), the recommendations and the scheduled reports.

Longer outages, and any range a user picks, are recalculated on demand
(``POST /api/v1/recalc``); a factor change recalculates the periods it applies to. Every
run that changed a figure, and every requested run, is stored with what changed.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import sessionmaker

from lingtan.influxdb import InfluxClient
from lingtan.park.carriers import CARRIER_UNITS
from lingtan.park.model import Park
from lingtan.settings import Settings
from lingtan_calc.adapters.derived import quarantine_line
from lingtan_calc.adapters.meter_events import CLEARED, QuarantineRow, decide, local, record_quarantines
from lingtan_calc.adapters.meter_events import adjustments as meter_adjustments
from lingtan_calc.adapters.store import (
    CalcRunRow,
    active_overrides,
    add_override,
    green_frame,
    process_frame,
    production_frame,
)
from lingtan_calc.core.accounting.factors import FactorLibrary, load_factor_file
from lingtan_calc.core.analysis.limits import default_limits, load_limit_file, merge_limits
from lingtan_calc.core.analysis.tariffs import default_tariffs, load_tariff_file
from lingtan_calc.service import budget, forecast, report_mail, reports, warning_notify
from lingtan_calc.service.engine import ParkCalculator, RunLog, next_start, period_start
from lingtan_calc.service.recommend import evaluate as evaluate_recommendations

log = logging.getLogger(__name__)
TZ = "Asia/Shanghai"
_job_ids = itertools.count(1)


@dataclass
class Job:
    id: str
    start: pd.Timestamp
    end: pd.Timestamp
    reason: str
    author: str
    scope: str | None = None  # an enterprise id or "park"; None: every entity
    state: str = "queued"  # queued, running, done, failed
    runs: list[RunLog] = field(default_factory=list)
    error: str = ""
    created: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "start": self.start.isoformat(), "end": self.end.isoformat(), "reason": self.reason,
                "author": self.author, "scope": self.scope or "all", "state": self.state, "error": self.error,
                "runs": [{"period": r.period, "start": r.start.isoformat(), "lines": r.lines,
                          "seconds": round(r.seconds, 3), "changed": r.changed} for r in self.runs]}


class CalcService:
    """Shared state of the calc-service app: park, InfluxDB client, factor library, jobs."""

    def __init__(self, settings: Settings, park: Park, client: InfluxClient, sessions: sessionmaker):
        self.settings = settings
        self.park = park
        self.client = client
        self.sessions = sessions
        self.shipped = FactorLibrary.shipped()
        self.seed_park_factors()
        self.lock = threading.RLock()  # one calculation at a time
        self.calculator = ParkCalculator(park, client, self.library())
        # a bad tariff file stops the start with its file, field and value (docs/analysis.md §2)
        self.tariffs = load_tariff_file(settings.tariff_file) if settings.tariff_file else default_tariffs()
        # the same for a park's limit file (docs/analysis.md §7)
        self.limits = (merge_limits(default_limits(), load_limit_file(settings.limits_file), settings.limits_file)
                       if settings.limits_file else default_limits())
        self.refresh_inputs()
        self.jobs: dict[str, Job] = {}
        self.recent: deque[RunLog] = deque(maxlen=200)
        self.last_cycle: dict[str, Any] = {}
        self._queue: deque[Job] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_window = self._last_daily = None
        self._recommend_after: pd.Timestamp | None = None

    # ------------------------------------------------------------------ inputs
    def seed_park_factors(self) -> list[str]:
        """Load ``<park file>.factors.yaml`` (next to the park model) into the store, once per factor id."""
        path = Path(self.settings.park_file).with_suffix(".factors.yaml")
        if not path.exists():
            return []
        added = []
        with self.sessions() as s:
            known = {f.id for f in active_overrides(s)}
            for f in load_factor_file(path):
                if f.id not in known:
                    add_override(s, f)
                    added.append(f.id)
        if added:
            log.info("park factor overrides loaded from %s: %s", path, ", ".join(added))
        return added

    def library(self) -> FactorLibrary:
        with self.sessions() as s:
            return self.shipped.with_overrides(active_overrides(s))

    def refresh_inputs(self) -> None:
        """Reload factor overrides, production data and meter events from SQL into the calculator."""
        with self.sessions() as s:
            self.calculator.lib = self.shipped.with_overrides(active_overrides(s))
            self.calculator.production = production_frame(s)
            self.calculator.process = process_frame(s)
            self.calculator.green = green_frame(s)
            self.calculator.adjustments = meter_adjustments(s)

    def record_quarantines(self, runs: list[RunLog]) -> None:
        """Store the intervals the runs quarantined; open ones a full hourly run no longer finds are cleared."""
        units = {pid: CARRIER_UNITS[r.carrier].counter for pid, r in self.calculator.by_id.items()}
        with self.sessions() as s:
            for r in runs:
                if r.period != "hour":
                    continue
                covered = None if r.bulk else (r.start, r.end)
                for row in record_quarantines(s, r.quarantined, units, covered):
                    log.warning("quarantined: point %s %s..%s measured %.6g %s, capacity allows %.6g", row.point,
                                local(row.start).isoformat(), local(row.end).isoformat(), row.measured, row.unit,
                                row.limit)

    # ------------------------------------------------------------------ meter events
    def decide_quarantine(self, row_id: int, status: str, author: str, reason: str,
                          quantity: float | None = None) -> tuple[dict, Job | None]:
        """Confirm or correct a quarantined interval, show it in ``data_quality``, recalculate its hours."""
        with self.sessions() as s:
            row = s.get(QuarantineRow, row_id)
            if row is None:
                raise KeyError(row_id)
            if row.status == CLEARED:
                raise ValueError(f"quarantined interval {row_id} was cleared: a later calculation no longer "
                                 "finds it (late readings split it); decide on the intervals it found instead")
            decide(s, row, status=status, author=author, reason=reason, quantity=quantity)
            out = row.as_dict()
        ref = self.calculator.by_id.get(out["point"])
        if ref is not None:
            self.client.write_lines([quarantine_line(ref, out, status)])
        start, end = pd.Timestamp(out["start"]), pd.Timestamp(out["end"])
        job = self.submit(period_start(start, "hour"), next_start(period_start(end - pd.Timedelta(1, "ns"), "hour"),
                                                                   "hour"),
                          f"quarantined interval {row_id} of {out['point']} {status}: {reason}", author)
        return out, job

    # ------------------------------------------------------------------ jobs
    def submit(self, start: pd.Timestamp, end: pd.Timestamp, reason: str, author: str,
               scope: str | None = None) -> Job:
        start, end = pd.Timestamp(start).tz_convert(TZ), pd.Timestamp(end).tz_convert(TZ)
        now = pd.Timestamp.now(tz=TZ)
        if end > now:
            end = period_start(now, "hour") + pd.Timedelta(hours=1)
        if not start < end:
            raise ValueError(f"start {start.isoformat()} is not before end {end.isoformat()}")
        entities = {e.id for e in self.park.enterprises} | {"park"}
        if scope is not None and scope not in entities:
            raise ValueError(f"scope {scope!r} is not 'park' or an enterprise of the park")
        job = Job(f"job-{int(time.time())}-{next(_job_ids)}", start, end, reason, author, scope)
        self.jobs[job.id] = job
        self._queue.append(job)
        self._wake.set()
        return job

    def run_job(self, job: Job) -> None:
        job.state = "running"
        try:
            self.refresh_inputs()
            with self.lock:
                job.runs = self.calculator.recalculate(job.start, job.end, job.reason, job.scope)
            self.record_quarantines(job.runs)
            job.state = "done"
        except Exception as exc:  # a job failure is reported on the job, never kills the service
            log.exception("recalculation %s failed", job.id)
            job.state, job.error = "failed", f"{exc.__class__.__name__}: {exc}"
        self._record(job.id, job.runs, force=True, error=job.error)
        if job.state == "done":  # the reports of the periods it changed are generated again (docs/analysis.md §8)
            try:
                reports.after_recalculation(self, job.start, job.end, job.reason)
            except Exception:
                log.exception("regenerating the reports after %s failed", job.id)

    def _record(self, job: str, runs: list[RunLog], force: bool = False, error: str = "") -> None:
        keep = [r for r in runs if force or r.changed]
        if not keep and not error:
            return
        with self.sessions() as s:
            for r in keep:
                s.add(CalcRunRow(job=job, period=r.period, start=r.start.to_pydatetime(), end=r.end.to_pydatetime(),
                                 reason=r.reason, lines=r.lines, seconds=r.seconds, changed=r.changed, error=error))
            s.commit()

    # ------------------------------------------------------------------ schedule
    def cycle(self, now: pd.Timestamp | None = None) -> list[RunLog]:
        """One scheduled pass (see the module doc); returns its runs."""
        now = pd.Timestamp.now(tz=TZ) if now is None else pd.Timestamp(now).tz_convert(TZ)
        hour = period_start(now, "hour")
        runs: list[RunLog] = []
        self.refresh_inputs()
        with self.lock:
            calc = self.calculator
            if now - hour < pd.Timedelta(minutes=10):
                runs.append(calc.run_hours(hour - pd.Timedelta(hours=1), hour, "hour closed"))
            runs.append(calc.run_hours(hour, hour + pd.Timedelta(hours=1), "current hour"))
            if self._last_window != now.floor("15min"):
                self._last_window = now.floor("15min")
                runs.append(calc.run_hours(hour - pd.Timedelta(hours=6), hour, "late-data window (6 h)"))
            day = period_start(now, "day")
            if now - day >= pd.Timedelta(minutes=15) and self._last_daily != day:
                self._last_daily = day
                runs += calc.recalculate(day - pd.Timedelta(days=2), day, "daily late-data pass (2 days)")
                self._recommend_after = day
            touched = {period_start(r.start, "day") for r in runs if r.period == "hour"}
            for d in sorted(touched):
                runs.append(calc.rollup("day", d))
            for m in sorted({period_start(d, "month") for d in touched}):
                runs.append(calc.rollup("month", m))
            for y in sorted({period_start(d, "year") for d in touched}):
                runs.append(calc.rollup("year", y))
        self.record_quarantines(runs)
        if self._recommend_after is not None:  # once a day, after the late-data pass (docs/analysis.md §7)
            day, self._recommend_after = self._recommend_after, None
            # the reports come after the recommendations, which they list; a failure of one (InfluxDB
            # down, a factor missing) is logged and does not keep the other from running
            # the forecasts first: the day's budget projections and warnings read them (docs/forecast.md)
            for what, daily in (("forecasts", forecast.daily), ("budgets and warnings", budget.evaluate),
                                ("recommendations", evaluate_recommendations), ("reports", reports.scheduled)):
                try:
                    daily(self, day)
                except Exception:
                    log.exception("the daily %s failed; the next day's pass runs them again", what)
        try:  # the reports waiting to be e-mailed (docs/analysis.md §8), the warnings to send (docs/budget.md §4)
            report_mail.deliver_due(self)
            warning_notify.deliver_due(self)
        except Exception:
            log.exception("sending the reports or warnings failed; the next cycle tries again")
        self.recent.extend(runs)
        self.last_cycle = {"at": now.isoformat(), "runs": len(runs), "seconds": round(sum(r.seconds for r in runs), 3)}
        log.info("cycle at %s: %d runs, %.2f s (%s)", now.strftime("%H:%M:%S"), len(runs), self.last_cycle["seconds"],
                 ", ".join(f"{r.period} {r.reason} {r.seconds:.2f}s" for r in runs if r.seconds > 0.5) or "all < 0.5 s")
        self._record("schedule", runs)
        return runs

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="calc-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        next_cycle = 0.0
        while not self._stop.is_set():
            while self._queue:
                self.run_job(self._queue.popleft())
            if time.monotonic() >= next_cycle:
                try:
                    self.cycle()
                except Exception:  # InfluxDB down, a factor missing: logged, retried next cycle
                    log.exception("scheduled calculation failed; retrying in %.0f s", self.settings.calc_interval_s)
                next_cycle = time.monotonic() + self.settings.calc_interval_s
            self._wake.wait(max(0.0, min(5.0, next_cycle - time.monotonic())))
            self._wake.clear()


def affected_range(factor_valid_from, factor_valid_to, first_computed: pd.Timestamp | None) -> tuple | None:
    """The computed periods a factor change applies to: [valid_from, valid_to) ∩ [first computed, now)."""
    now = pd.Timestamp.now(tz=TZ)
    start = pd.Timestamp(factor_valid_from).tz_localize(TZ)
    if first_computed is not None:
        start = max(start, first_computed)
    end = now if factor_valid_to is None else min(now, pd.Timestamp(factor_valid_to).tz_localize(TZ))
    if not start < end:
        return None
    return period_start(start, "hour"), next_start(period_start(end - pd.Timedelta(1, "ns"), "hour"), "hour")


def service_of(app) -> CalcService:
    """The :class:`CalcService` of a calc-service Flask app (set by :func:`lingtan_calc.service.app.create_app`)."""
    return app.extensions["lingtan_calc"]
