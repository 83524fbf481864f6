"""``lingtan status``: each process, whether it is up, and when it last wrote."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lingtan.influxdb import InfluxClient
from lingtan.park.model import Park
from lingtan.series import FIELD_COUNTER, FIELD_RATE
from lingtan.settings import Settings


def point_freshness(client: InfluxClient, park: Park, window_s: int = 300) -> dict[str, float]:
    """Unix time of the newest value of each point written within ``window_s``."""
    measurements = sorted({m.carrier.value for e in park.enterprises for u in e.units for m in u.meters})
    sources = ",".join(f'"{m}"' for m in measurements)
    where = f"WHERE time > now() - {int(window_s)}s AND \"park\" = '{park.park.id}'"
    q = ";".join(f'SELECT last("{f}") FROM {sources} {where} GROUP BY "point"' for f in (FIELD_COUNTER, FIELD_RATE))
    out: dict[str, float] = {}
    for series in client.series(q, epoch="ms"):
        point = series.get("tags", {}).get("point")
        if point and series.get("values"):
            out[point] = max(out.get(point, 0.0), series["values"][0][0] / 1000.0)
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect_status(settings: Settings) -> dict[str, Any]:
    """Status of supervised processes, local servers and collectors, as a dict."""
    from lingtan_tools.stack.services import (
        LocalInflux,
        LocalMosquitto,
        live_process,
        supervisor_pid,
        supervisor_status,
    )

    state = Path(settings.state_dir).absolute()
    now = time.time()
    processes: list[dict[str, Any]] = []
    for server in (LocalInflux(state), LocalMosquitto(state)):
        processes.append({"name": server.binary_name, "pid": server.pid, "up": server.is_running(),
                          "restarts": 0, "last_write": None, "detail": f"127.0.0.1:{server.port}"})
    sup = supervisor_status(state) or {}
    if sup:
        s = sup.get("supervisor", {})
        processes.append({"name": "supervisor", "pid": s.get("pid"), "up": supervisor_pid(state) is not None,
                          "restarts": 0, "last_write": None, "detail": ""})
    for child in sup.get("children", []):
        entry = {"name": child["name"], "pid": child.get("pid"), "up": child.get("status") == "running"
                 and live_process(child.get("pid"), create_time=child.get("create_time")) is not None,
                 "restarts": child.get("restarts", 0), "last_write": None, "detail": ""}
        st = _read_json(state / "run" / f"{child['name']}.status.json")
        if st:
            entry["last_write"] = st.get("last_write") or None
            entry["detail"] = (f"in {st.get('points_in', 0)} written {st.get('written', 0)} "
                               f"queue {st.get('queue_depth', 0)} buffer {st.get('buffer_bytes', 0)} B"
                               + (" REPLAYING" if st.get("replaying") else "")
                               + (f" dq {st['data_quality']}" if st.get("data_quality") else ""))
        else:
            log_file = state / "logs" / f"{child['name']}.log"
            if log_file.exists():
                entry["detail"] = f"log updated {now - log_file.stat().st_mtime:.0f} s ago"
        processes.append(entry)
    return {"state_dir": str(state), "time": now, "processes": processes}


def format_status(status: dict[str, Any]) -> str:
    now = status["time"]
    rows = [f"{'process':18s} {'state':5s} {'pid':>8s} {'restarts':>8s} {'last write':>12s}  detail"]
    for p in status["processes"]:
        lw = p.get("last_write")
        ago = f"{now - lw:.0f} s ago" if lw else "-"
        rows.append(f"{p['name']:18s} {'up' if p['up'] else 'DOWN':5s} {p.get('pid') or '-'!s:>8s} "
                    f"{p.get('restarts', 0)!s:>8s} {ago:>12s}  {p.get('detail', '')}")
    return "\n".join(rows)
