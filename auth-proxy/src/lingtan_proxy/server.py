"""Serving the proxy: gunicorn (gthread workers) on HTTPS, and a plain-HTTP listener that only redirects.

TLS 1.2 or later with the park CA's server certificate, or the real certificate set in
``LINGTAN_PROXY_TLS_CERT``/``_KEY``. Client certificates are requested, not required
(``CERT_OPTIONAL``): a certificate is a second factor, a password is always the first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from lingtan.settings import Settings
from lingtan_proxy.app import create_app
from lingtan_proxy.certs import ParkCA, default_directory, server_ssl_context
from lingtan_proxy.context import EXTENSION

log = logging.getLogger(__name__)


class ProxyServer(BaseApplication):
    """gunicorn with its configuration from :class:`Settings`, the app built once before forking."""

    def __init__(self, settings: Settings, *, bind: str | None = None):
        self.settings = settings
        self.bind = bind or f"{settings.proxy_bind}:{settings.proxy_port}"
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        ca = ParkCA.ensure(default_directory(Path(s.state_dir)))
        cert = s.proxy_tls_cert or ca.server_cert_path
        key = s.proxy_tls_key or ca.server_key_path

        def ssl_context(_config: Any, _default_factory: Any):
            return server_ssl_context(ca, s.proxy_tls_cert, s.proxy_tls_key)

        def post_fork(_server: Any, _worker: Any) -> None:
            # connections opened by the master while bootstrapping must not be shared with the workers
            self._app.extensions[EXTENSION].db.kw["bind"].dispose(close=False)

        for key_, value in {"bind": [self.bind], "workers": s.proxy_workers, "threads": s.proxy_threads,
                            "worker_class": "gthread", "certfile": str(cert), "keyfile": str(key),
                            "ssl_context": ssl_context, "post_fork": post_fork, "preload_app": True,
                            "keepalive": 75, "timeout": 0, "graceful_timeout": 10, "accesslog": None,
                            "errorlog": "-", "loglevel": "warning", "proc_name": "lingtan-proxy"}.items():
            self.cfg.set(key_, value)

    def load(self):
        self._app = create_app(self.settings)
        return self._app


def redirect_app(settings: Settings):
    """A WSGI app answering every request with a redirect to the HTTPS listener (308 keeps the method)."""

    def app(environ, start_response):
        if settings.proxy_public_url:
            base = settings.proxy_public_url
        else:
            host = (environ.get("HTTP_HOST") or settings.proxy_bind).rsplit(":", 1)[0] if not \
                (environ.get("HTTP_HOST") or "").startswith("[") else environ["HTTP_HOST"].split("]")[0] + "]"
            if not host or any(c in host for c in "/\\@?#"):
                host = "localhost"
            base = f"https://{host}:{settings.proxy_port}"
        path = environ.get("PATH_INFO", "/") or "/"
        qs = environ.get("QUERY_STRING", "")
        location = base + path + (f"?{qs}" if qs else "")
        status = "301 Moved Permanently" if environ.get("REQUEST_METHOD") in ("GET", "HEAD") else "308 Permanent Redirect"
        start_response(status, [("Location", location), ("Content-Length", "0"), ("Cache-Control", "no-store")])
        return [b""]

    return app


def serve_redirect(settings: Settings) -> None:
    from waitress import serve

    serve(redirect_app(settings), host=settings.proxy_bind, port=settings.proxy_http_port, threads=4,
          ident="lingtan-redirect")
