"""All InfluxDB I/O: line protocol on ``/write`` and InfluxQL on ``/query`` (v1 HTTP API).

The same calls work on InfluxDB 1.x, on 2.x through v1 compatibility (DBRP + v1 auth)
and on 3.x (token as password). No Flux, no v2 client. See docs/architecture.md.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests

from lingtan.settings import Settings


class InfluxError(RuntimeError):
    """InfluxDB answered with an error (or not at all)."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.status = status
        #: False when the server rejected the data itself (HTTP 400): retrying the same
        #: batch cannot succeed, so the caller must split it or quarantine the bad lines.
        self.retryable = retryable


@dataclass
class InfluxClient:
    url: str
    database: str
    username: str = ""
    password: str = ""
    retention_policy: str = ""
    timeout_s: float = 10.0
    gzip_writes: bool = True
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> InfluxClient:
        return cls(
            url=settings.influx_url,
            database=settings.influx_db,
            username=settings.influx_user,
            password=settings.influx_password,
            retention_policy=settings.influx_rp,
            timeout_s=settings.influx_timeout_s,
            # compressing costs more CPU than it saves on loopback, where InfluxDB shares the cores
            gzip_writes=urlparse(settings.influx_url).hostname not in ("127.0.0.1", "localhost", "::1"),
        )

    # ------------------------------------------------------------------ helpers
    @property
    def _auth(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username else None

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            resp = self.session.request(method, self.url + path, auth=self._auth, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise InfluxError(f"InfluxDB at {self.url} unreachable: {exc.__class__.__name__}: {exc}") from exc
        if resp.status_code >= 300:
            try:
                detail = resp.json().get("error", resp.text)
            except ValueError:
                detail = resp.text
            raise InfluxError(
                f"InfluxDB {method} {path} -> HTTP {resp.status_code}: {detail.strip()[:500]}",
                status=resp.status_code,
                retryable=resp.status_code not in (400, 401, 403, 404, 413),
            )
        return resp

    # ------------------------------------------------------------------ API
    def ping(self) -> str:
        """Return the server version; accepts 204 (1.x/2.x) and 200 (3.x)."""
        resp = self._request("GET", "/ping")
        return resp.headers.get("X-Influxdb-Version", "unknown")

    def write_lines(self, lines: list[str] | str | bytes, precision: str = "ns") -> None:
        """POST line protocol (lines, one text, or UTF-8 bytes). Raises :class:`InfluxError` on any failure."""
        if isinstance(lines, bytes):
            data = lines
        else:
            data = (lines if isinstance(lines, str) else "\n".join(lines)).encode("utf-8")
        if not data:
            return
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip_writes and len(data) > 4096:
            data = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        params = {"db": self.database, "precision": precision}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        self._request("POST", "/write", params=params, data=data, headers=headers)

    def query(self, q: str, *, database: str | None = None, epoch: str = "ms", method: str = "POST") -> list[dict]:
        """Run InfluxQL; return the ``results`` list. Statement errors raise :class:`InfluxError`."""
        params = {"q": q, "epoch": epoch}
        db = self.database if database is None else database
        if db:
            params["db"] = db
        if method == "POST":
            resp = self._request("POST", "/query", data=params)
        else:
            resp = self._request("GET", "/query", params=params)
        results = resp.json().get("results", [])
        for res in results:
            if "error" in res:
                raise InfluxError(f"InfluxQL error: {res['error']} in {q[:300]!r}", retryable=False)
        return results

    def query_csv(self, q: str, *, database: str | None = None, epoch: str = "ms") -> bytes:
        """Run InfluxQL and return the CSV answer (``Accept: application/csv``): for large results,
        which parse several times faster than JSON. Columns: name, tags, time, then the fields."""
        params = {"q": q, "epoch": epoch}
        db = self.database if database is None else database
        if db:
            params["db"] = db
        resp = self._request("POST", "/query", data=params, headers={"Accept": "application/csv"})
        if resp.headers.get("Content-Type", "").startswith("application/json"):
            results = resp.json().get("results", [])
            for res in results:
                if "error" in res:
                    raise InfluxError(f"InfluxQL error: {res['error']} in {q[:300]!r}", retryable=False)
        return resp.content

    def series(self, q: str, **kwargs: Any) -> list[dict]:
        """All series of all statements of ``q``, flattened: dicts with name, tags, columns, values."""
        out: list[dict] = []
        for res in self.query(q, **kwargs):
            out.extend(res.get("series", []))
        return out

    def rows(self, q: str, **kwargs: Any) -> list[dict]:
        """Rows of ``q`` as dicts, with the series tags merged in."""
        out = []
        for s in self.series(q, **kwargs):
            tags = s.get("tags", {})
            for values in s.get("values", []):
                out.append({**tags, **dict(zip(s["columns"], values, strict=True))})
        return out
