"""The simulated weather station: posts hourly air temperature to the calc-service, as a real feed does.

A park gets its weather from its own station, the meteorological service or a vendor, through
the calc-service's weather import (``POST /api/v1/weather``, docs/analysis.md §3). The demo
park's station has ``source: simulated``; this feed reports the temperature the simulated loads
follow (:func:`lingtan_tools.simulate.physics.air_temperature`), one row per whole simulated
hour. It learns from the calc-service where its series ends and fills the gap after a
restart (at most :data:`MAX_BACKFILL`), and it keeps what it could not post and retries, so an
hour is not lost while the calc-service is down.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pandas as pd

from lingtan.park.model import Park
from lingtan.settings import Settings
from lingtan_tools.simulate import physics

log = logging.getLogger(__name__)

#: the longest gap filled after a restart (a month, as a meteorological service keeps at hand)
MAX_BACKFILL = pd.Timedelta(days=31)
#: what a fresh station reports before its first hour, so the portal has a week to show
FIRST_HISTORY = pd.Timedelta(days=7)
#: rows per request (a year of hours in 9 requests)
BATCH = 1000
#: wall seconds between attempts while the calc-service does not answer
RETRY_S = 30.0
HTTP_TIMEOUT_S = 10.0


def simulated_station(park: Park) -> str | None:
    """The park's weather station that the simulator plays (``source: simulated``), None without one."""
    if park.weather is None:
        return None
    return next((s.id for s in park.weather.stations if s.source.value == "simulated"), None)


class WeatherFeed:
    """Hourly observations of the simulated station, posted in order; call :meth:`step` with the simulated time."""

    def __init__(self, park: Park, settings: Settings, *, seed: int) -> None:
        self.station = simulated_station(park)
        self.tz = park.park.timezone
        self.seed = seed
        base = settings.weather_feed_url or settings.calc_url
        self.url = "" if base == "off" or self.station is None else base.rstrip("/") + "/api/v1/weather"
        self.next_hour: pd.Timestamp | None = None  # the first hour not yet posted (UTC)
        self._retry_at = 0.0
        self.posted = 0

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def due(self, sim_time: dt.datetime) -> bool:
        """Whether :meth:`step` has an hour to post (or must first learn where to resume) and may try now."""
        if not self.enabled or time.monotonic() < self._retry_at:
            return False
        return self.next_hour is None or self.next_hour <= min(pd.Timestamp(sim_time), pd.Timestamp.now(tz="UTC"))

    def observations(self, first: pd.Timestamp, last: pd.Timestamp) -> list[dict[str, Any]]:
        """Rows for every whole hour from ``first`` to ``last`` inclusive [°C, rounded to 0.01 K]."""
        hours = pd.date_range(first, last, freq="h", tz="UTC")
        temps = physics.air_temperature(hours.tz_convert(self.tz), self.seed)
        return [{"station": self.station, "time": t.isoformat(), "air_temperature": round(float(v), 2)}
                for t, v in zip(hours, temps, strict=True)]

    def step(self, sim_time: dt.datetime) -> int:
        """Post every whole hour up to ``sim_time`` that is not posted yet; returns the rows posted.

        Blocking (HTTP); the simulator calls it from a worker thread. A failed post is retried
        after :data:`RETRY_S` wall seconds from the same hour.
        """
        if not self.enabled or time.monotonic() < self._retry_at:
            return 0
        # a simulation run ahead of the clock (--speed) reports no hour that has not happened yet
        now_hour = min(pd.Timestamp(sim_time).tz_convert("UTC"), pd.Timestamp.now(tz="UTC")).floor("h")
        try:
            if self.next_hour is None:
                self.next_hour = self._resume_from(now_hour)
            sent = 0
            while self.next_hour <= now_hour:
                last = min(now_hour, self.next_hour + pd.Timedelta(hours=BATCH - 1))
                self._post(self.observations(self.next_hour, last))
                sent += int((last - self.next_hour) / pd.Timedelta(hours=1)) + 1
                self.next_hour = last + pd.Timedelta(hours=1)
            self.posted += sent
            return sent
        except (OSError, ValueError) as exc:  # calc-service down or refusing: keep the hours, try again
            log.warning("weather feed: %s; retrying in %.0f s", exc, RETRY_S)
            self._retry_at = time.monotonic() + RETRY_S
            return 0

    def _resume_from(self, now_hour: pd.Timestamp) -> pd.Timestamp:
        """The hour after the station's last observation in the calc-service (bounded), or a week back."""
        query = urllib.parse.urlencode({"station": self.station, "start": (now_hour - MAX_BACKFILL).isoformat(),
                                        "end": (now_hour + pd.Timedelta(hours=1)).isoformat()})
        with urllib.request.urlopen(f"{self.url}?{query}", timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310 - our URL
            latest = json.loads(resp.read()).get("latest_observation")
        if latest is None:
            return now_hour - FIRST_HISTORY
        return max(pd.Timestamp(latest).tz_convert("UTC").floor("h") + pd.Timedelta(hours=1), now_hour - MAX_BACKFILL)

    def _post(self, rows: list[dict[str, Any]]) -> None:
        body = json.dumps({"rows": rows}).encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Lingtan-User": "simulator"})
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310 - our URL
                resp.read()
        except urllib.error.HTTPError as exc:  # refused rows: name what the calc-service said
            detail = exc.read().decode(errors="replace")[:500]
            raise ValueError(f"POST {self.url} answered {exc.code}: {detail}") from None
