"""Helpers for golden tests: a database's whole content as sorted line protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lingtan.influxdb import InfluxClient
from lingtan.series import line

_TYPES: dict[str, Callable[[Any], Any]] = {"float": float, "integer": int, "string": str, "boolean": bool}


def influx_lines(client: InfluxClient, exclude: tuple[str, ...] = ("collector_stats",)) -> list[str]:
    """Everything in the database as sorted line protocol (tags and fields sorted, ns timestamps)."""
    out = []
    for s in client.series("SHOW MEASUREMENTS"):
        for (measurement,) in s["values"]:
            if measurement in exclude:
                continue
            types = {k: t for sk in client.series(f'SHOW FIELD KEYS FROM "{measurement}"') for k, t in sk["values"]}
            for series in client.series(f'SELECT * FROM "{measurement}" GROUP BY *', epoch="ns"):
                for row in series["values"]:
                    rec = dict(zip(series["columns"], row, strict=True))
                    ts = rec.pop("time")
                    fields = {k: _TYPES[types[k]](v) for k, v in sorted(rec.items()) if v is not None}
                    out.append(line(measurement, series.get("tags", {}), fields, ts))
    return sorted(out)


def read_expected(path: Path) -> list[str]:
    """Lines of an ``expected.lp`` file, sorted, without blanks and ``#`` comments."""
    return sorted(ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#"))
