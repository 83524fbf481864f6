"""A small keep-alive HTTP/1.1 client for the proxy's upstreams (calc-service, Grafana).

One persistent ``http.client`` connection per thread and upstream: a proxied request costs one
round trip and no connection set-up. ``requests`` spent about 2 ms of CPU per call here, more than
the whole budget the proxy has (docs/benchmarks.md); this costs a fraction of that.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK = 64 * 1024
# a reused keep-alive connection the upstream has closed fails at once; such a request is sent again
_STALE = (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError, ConnectionResetError)


@dataclass
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    _resp: http.client.HTTPResponse
    _release: object

    def iter_body(self) -> Iterator[bytes]:
        try:
            while chunk := self._resp.read(CHUNK):
                yield chunk
        finally:
            self.close()

    def read(self) -> bytes:
        try:
            return self._resp.read()
        finally:
            self.close()

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(self._resp)


class Upstream:
    """Requests to one base URL (``http://host:port``) over per-thread persistent connections."""

    def __init__(self, base_url: str, timeout: float = 300.0, connect_timeout: float = 5.0):
        parts = urlsplit(base_url)
        self.scheme, self.host = parts.scheme, parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.netloc = parts.netloc
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.connect_timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def request(self, method: str, path_qs: str, headers: dict[str, str], body: bytes | None = None) -> UpstreamResponse:
        """Send one request; the answer's body must be consumed or closed before the next on this thread."""
        headers = {**headers, "Host": self.netloc}
        for attempt in (1, 2):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.request(method, path_qs, body=body, headers=headers)
                if conn.sock is not None:
                    conn.sock.settimeout(self.timeout)
                resp = conn.getresponse()
            except _STALE:
                self._drop()
                if reused and attempt == 1:
                    continue
                raise
            except OSError:
                self._drop()
                raise
            raw_headers = [(k, v) for k, v in resp.getheaders()]
            return UpstreamResponse(resp.status, raw_headers, resp, self._release)
        raise AssertionError("unreachable")

    def _release(self, resp: http.client.HTTPResponse) -> None:
        if not resp.isclosed():
            # an unread rest means the connection cannot be reused
            self._drop()
        elif resp.will_close:
            self._drop()
