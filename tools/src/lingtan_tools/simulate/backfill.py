"""``lingtan simulate --backfill 60d``: months of simulated history, written as the collectors would.

The simulation engine runs from ``end − days`` to ``end`` at a 15-minute step (the readings a
meter-reading system keeps) and every point's reading is written to the raw retention policy as
the collectors write it: the wire value (wrapped, quantised) converted back to the canonical
unit, with the same measurement, tags and field (docs/schema.md). No faults are injected.

Where it ends and how its counters meet the live ones:

* InfluxDB already holds readings of the park: the backfill ends at the first of them, and each
  counter's backfilled readings end at that counter's first stored reading, so the history runs
  into the live data without a step. A counter whose first reading is smaller than what it
  would have counted over the whole backfill starts later (its meter was new then).
* Otherwise it ends now and the counters end at the live simulator's saved readings
  (``counters.json``), or at the seeded ones, which it then saves for the live simulator.

Then, when the calc-service answers (it is waited for), the backfill posts the simulated
weather station's hourly temperatures for the range, asks for the range to be recalculated and,
once that is done, for the day's forecasts (docs/forecast.md); then it sets the demo budgets
(``lingtan/data/demo_park.budgets.yaml``, docs/budget.md) and evaluates the warnings. The raw retention policy bounds
the backfill: it keeps ``raw`` days (90 by default, influx/10-retention.iql) and the calc-service
accounts from raw readings, so a backfill is at most one day shorter than that.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lingtan.influxdb import InfluxClient
from lingtan.park import counters
from lingtan.park.carriers import Kind
from lingtan.park.index import iter_points
from lingtan.park.model import Park
from lingtan.series import PointEncoder
from lingtan.settings import Settings
from lingtan_collectors.common import codec
from lingtan_tools.simulate import demo_budgets
from lingtan_tools.simulate.engine import Engine
from lingtan_tools.simulate.runner import load_counter_state, save_counter_state
from lingtan_tools.simulate.weather_feed import WeatherFeed

log = logging.getLogger(__name__)
STEP_S = 900.0
LINES_PER_WRITE = 50_000
#: how long the backfill waits for the calc-service to answer, and for its recalculation [s]
CALC_WAIT_S, RECALC_WAIT_S = 300.0, 900.0
HTTP_TIMEOUT_S = 30.0
#: a daily pass asked for by hand (forecasts, budgets and warnings): minutes, not seconds, when it catches up
PASS_TIMEOUT_S = 600.0


class BackfillError(ValueError):
    """A backfill that cannot run as asked (the reason names the setting or the data)."""


@dataclass
class BackfillResult:
    start: pd.Timestamp | None
    end: pd.Timestamp
    lines: int = 0
    points: int = 0
    seconds: float = 0.0
    note: str = ""
    calc: dict[str, Any] = field(default_factory=dict)


def parse_days(text: str) -> float:
    """``"60d"``, ``"60"`` or ``"12w"`` → days; BackfillError naming the value otherwise."""
    raw = text.strip().lower()
    unit = {"d": 1.0, "w": 7.0}.get(raw[-1:])
    number = raw[:-1] if unit else raw
    try:
        days = float(number) * (unit or 1.0)
    except ValueError:
        raise BackfillError(f"--backfill {text!r}: expected a number of days like 60d or 8w") from None
    if not 1 <= days <= 3660:
        raise BackfillError(f"--backfill {text!r}: between 1 day and 10 years, got {days:g} days")
    return days


def raw_retention_days(client: InfluxClient) -> float | None:
    """Duration of the raw retention policy [d]; None when it keeps everything (or does not exist)."""
    for row in client.rows(f'SHOW RETENTION POLICIES ON "{client.database}"'):
        if row.get("name") == "raw":
            hours = pd.Timedelta(str(row.get("duration", "0s"))).total_seconds() / 3600.0
            return hours / 24.0 if hours > 0 else None
    return None


def first_readings(client: InfluxClient, park: Park) -> dict[str, tuple[int, float]]:
    """point id → (epoch ns, canonical value) of its first stored reading (counters and rates)."""
    out: dict[str, tuple[int, float]] = {}
    known = {r.id for r in iter_points(park)}
    measurements = sorted({r.carrier.value for r in iter_points(park)})
    for fld in ("total", "rate"):
        src = ",".join(f'"{m}"' for m in measurements)
        q = f'SELECT first("{fld}") FROM {src} WHERE "park" = \'{park.park.id}\' GROUP BY "point"'
        for s in client.series(q, epoch="ns"):
            point = s.get("tags", {}).get("point")
            if point in known and s["values"]:
                t, v = s["values"][0][:2]
                if v is not None:
                    out[point] = (int(t), float(v))
    return out


def _simulate(park: Park, seed: int, start: pd.Timestamp, ticks: int) -> tuple[Engine, np.ndarray]:
    """The engine's canonical values (counters unwrapped, from 0) at ``ticks`` ticks from ``start``."""
    zero = {r.id: 0.0 for r in iter_points(park) if r.point.kind is Kind.counter}
    engine = Engine(park, seed=seed, start=start.to_pydatetime(), step_s=STEP_S, resume=zero)
    values = np.empty((ticks, len(engine.refs)))
    for k in range(ticks):
        engine.step()
        values[k] = engine.values
    return engine, values


def backfill(park: Park, settings: Settings, days: float, *, seed: int = 1, counter_state: Path | None = None,
             now: pd.Timestamp | None = None) -> BackfillResult:
    """Write ``days`` of simulated readings before the park's first stored one (or now); see the module doc."""
    started = time.perf_counter()
    client = InfluxClient.from_settings(settings)
    keep = raw_retention_days(client)
    if keep is not None and days > keep - 1:
        raise BackfillError(f"--backfill {days:g}d: the raw retention policy keeps {keep:g} days and the calc-service "
                            f"accounts from raw readings; backfill at most {keep - 1:g}d (or lengthen raw in "
                            f"influx/10-retention.iql)")
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    stored = first_readings(client, park)
    end = (pd.Timestamp(min(t for t, _ in stored.values()), tz="UTC") if stored else now).floor("15min")
    if end <= now - pd.Timedelta(days=days):
        return BackfillResult(None, end, note=f"history already reaches back to {end.isoformat()}: nothing to do")
    start = end - pd.Timedelta(days=days)
    # ticks start .. end inclusive: the one at ``end`` only aligns the counters (it is the live data's)
    engine, values = _simulate(park, seed, start, int((end - start) / pd.Timedelta(seconds=STEP_S)) + 1)
    targets = _end_readings(engine, stored, counter_state, park)
    lines = _lines(engine, values, targets, start)
    for i in range(0, len(lines), LINES_PER_WRITE):
        client.write_lines(lines[i:i + LINES_PER_WRITE])
    if not stored and counter_state is not None:  # the live simulator carries on from the backfill's readings
        save_counter_state(counter_state, park, targets, end.to_pydatetime())
    result = BackfillResult(start, end, len(lines), len(engine.refs), round(time.perf_counter() - started, 1))
    log.info("backfill: %d readings of %d points from %s to %s in %.1f s", result.lines, result.points,
             start.isoformat(), end.isoformat(), result.seconds)
    return result


def _end_readings(engine: Engine, stored: dict[str, tuple[int, float]], counter_state: Path | None,
                  park: Park) -> dict[str, float]:
    """Each counter's reading at the backfill's end [canonical, unwrapped]."""
    if stored:
        return {r.id: stored[r.id][1] for r in engine.refs if r.point.kind is Kind.counter and r.id in stored}
    saved = load_counter_state(counter_state, park) if counter_state is not None else {}
    seeded = Engine(park, seed=engine.seed, start=engine.time_at(0)).counter_state()
    return {pid: saved.get(pid, seeded[pid]) for pid in seeded}


def _lines(engine: Engine, values: np.ndarray, targets: dict[str, float], start: pd.Timestamp) -> list[str]:
    """Line protocol of every tick but the last, counters shifted so that the last reads its target."""
    encoder = PointEncoder(engine.refs)
    times = int(start.value) + np.arange(len(values) - 1, dtype=np.int64) * engine.step_ns
    out: list[str] = []
    for i, ref in enumerate(engine.refs):
        column = values[:-1, i]
        if ref.point.kind is Kind.counter:
            if ref.id not in targets:
                continue  # a counter InfluxDB has no reading of while others have: leave it alone
            column = column - values[-1, i] + targets[ref.id]
            # below zero: a register with a modulus had wrapped (to_wire wraps it back); any other
            # meter was not there yet, and its history starts at its first reading of zero or more
            first = 0 if counters.canonical_modulus(ref) is not None else int(np.searchsorted(column, 0.0))
            column, stamps = column[first:], times[first:]
        else:
            stamps = times
        for ts, value in zip(stamps.tolist(), column.tolist(), strict=True):
            out.append(encoder.encode(ref.id, codec.wire_to_canonical(ref, codec.to_wire(ref, value)), ts))
    return out


# --------------------------------------------------------------------------- the calc-service's part


def _calc(url: str, path: str, body: dict | None = None, method: str = "GET",
          timeout: float = HTTP_TIMEOUT_S) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{url}{path}", data=data, method=method, headers={
        "Content-Type": "application/json", "X-Lingtan-User": "simulator-backfill"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our calc-service URL
        return json.loads(resp.read() or b"{}")


def calc_follow_up(park: Park, settings: Settings, result: BackfillResult, *, seed: int = 1) -> dict[str, Any]:
    """Weather for the range, its recalculation, the day's forecasts and the demo budgets (with the first
    evaluation of the warnings), once the calc-service answers."""
    if result.start is None:
        return {}
    url = settings.calc_url.rstrip("/")
    deadline = time.monotonic() + CALC_WAIT_S
    while True:
        try:
            _calc(url, "/api/v1/health")
            break
        except (OSError, ValueError) as exc:
            if time.monotonic() > deadline:
                raise BackfillError(f"the calc-service at {url} did not answer in {CALC_WAIT_S:.0f} s ({exc}); "
                                    f"recalculate {result.start.isoformat()} .. {result.end.isoformat()} "
                                    "with POST /api/v1/recalc when it is up") from None
            time.sleep(5)
    out: dict[str, Any] = {}
    feed = WeatherFeed(park, settings, seed=seed)
    if feed.enabled:
        hours = pd.date_range(result.start.ceil("h"), result.end - pd.Timedelta(hours=1), freq="h")
        for i in range(0, len(hours), 24 * 31):
            part = hours[i:i + 24 * 31]
            _calc(url, "/api/v1/weather", {"rows": feed.observations(part[0], part[-1])}, "POST")
        out["weather_hours"] = len(hours)
    job = _calc(url, "/api/v1/recalc", {"start": result.start.isoformat(), "end": result.end.isoformat(),
                                        "reason": "simulated history (backfill)"}, "POST")
    deadline = time.monotonic() + RECALC_WAIT_S
    while job.get("state") in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(3)
        job = _calc(url, f"/api/v1/recalc/{job['id']}")
    out["recalc"] = job.get("state")
    if job.get("state") == "done":
        # the daily pass (late origins, today's issue, verification) takes a minute on a small machine
        summary = _calc(url, "/api/v1/forecast/issue", {}, "POST", timeout=PASS_TIMEOUT_S)
        out["forecast_lines"] = summary.get("lines")
        entities = {"park", *(e.id for e in park.enterprises)}
        out["budgets"] = demo_budgets.seed(
            lambda path, body=None, method="GET": _calc(url, path, body, method, timeout=PASS_TIMEOUT_S), entities)
    return out


def run_backfill(park: Park, settings: Settings, days_text: str, *, seed: int,
                 counter_state: Path | None) -> BackfillResult:
    """The CLI's backfill: raw readings now, the calc-service's part after (errors there are logged)."""
    result = backfill(park, settings, parse_days(days_text), seed=seed, counter_state=counter_state)
    print(f"backfill: {result.note or f'{result.lines:,} readings from {result.start} to {result.end} ({result.seconds} s)'}",
          flush=True)
    return result


def backfill_behind_live(park: Park, settings: Settings, days_text: str, seed: int, wait_s: float = 300.0) -> None:
    """Backfill behind a live simulator (a worker thread): once InfluxDB holds a reading of every counter
    (or after ``wait_s``), the history is written up to those first readings, then the calc's part runs."""
    try:
        days = parse_days(days_text)
        client = InfluxClient.from_settings(settings)
        counter_ids = {r.id for r in iter_points(park) if r.point.kind is Kind.counter}
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                if counter_ids <= set(first_readings(client, park)):
                    break
            except (OSError, ValueError) as exc:  # InfluxDB not up yet
                log.debug("backfill waits for InfluxDB: %s", exc)
            time.sleep(5)
        result = backfill(park, settings, days, seed=seed)
        log.info("backfill: %s", result.note or f"{result.lines} readings from {result.start} to {result.end}")
        follow_up_logged(park, settings, result, seed)
    except (OSError, ValueError) as exc:  # a backfill that cannot run leaves the live simulation alone
        log.warning("backfill: %s", exc)


def follow_up_logged(park: Park, settings: Settings, result: BackfillResult, seed: int) -> None:
    try:
        result.calc = calc_follow_up(park, settings, result, seed=seed)
        log.info("backfill follow-up: %s", result.calc)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        log.warning("backfill follow-up: %s", exc)
