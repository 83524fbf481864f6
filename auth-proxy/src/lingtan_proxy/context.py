"""The proxy's shared state and request helpers, for the app factory and every blueprint.

:func:`lingtan_proxy.app.create_app` builds one :class:`ProxyState` per app and stores it in
``app.extensions``; views read it with :func:`state`. Keeping it here, below both the app and
the views, is what lets the views be imported without the app (docs/architecture.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, request
from sqlalchemy.orm import sessionmaker

from lingtan.influxdb import InfluxClient
from lingtan.park.model import Park
from lingtan.settings import Settings
from lingtan_proxy import sessions
from lingtan_proxy.httpclient import Upstream
from lingtan_proxy.identity import ProxyContext
from lingtan_proxy.models import User
from lingtan_proxy.policy import SecurityPolicy

EXTENSION = "lingtan_proxy"
LOGIN_CSRF_COOKIE = "__Host-lingtan-csrf"
JSON_PREFIXES = ("/api/", "/calc/")


@dataclass
class ProxyState:
    settings: Settings
    policy: SecurityPolicy
    db: sessionmaker
    ctx: ProxyContext
    park: Park
    ca: Any  # lingtan_proxy.certs.ParkCA
    enterprises: dict[str, str] = field(default_factory=dict)  # id -> name
    _local: threading.local = field(default_factory=threading.local)

    def __post_init__(self) -> None:
        self.calc = Upstream(self.settings.calc_url)
        self.grafana = Upstream(self.settings.grafana_url) if self.settings.grafana_url else None
        self.session_reader = sessions.SessionReader(self.settings.sql_url)
        self._users: dict[int, tuple[int, Any]] = {}
        self._users_lock = threading.Lock()

    @property
    def influx(self) -> InfluxClient:
        """This thread's InfluxDB client (realtime values and the portal overview)."""
        client = getattr(self._local, "influx", None)
        if client is None:
            client = self._local.influx = InfluxClient.from_settings(self.settings)
        return client

    def cached_user(self, db, info) -> Any:
        """The user of a complete session, loaded once per identity epoch (see models.AuthEpoch)."""
        hit = self._users.get(info.user_id)
        if hit is not None and hit[0] == info.epoch:
            return hit[1]
        # roles with their permissions, enterprises and TOTP are selectin relationships: loaded with the row,
        # so the cached object stays readable after this request's session closes
        user = db.get(User, info.user_id, populate_existing=True)
        if user is not None:
            with self._users_lock:
                if len(self._users) > 10_000:
                    self._users.clear()
                self._users[info.user_id] = (info.epoch, user)
        return user


def state() -> ProxyState:
    """This app's :class:`ProxyState` (set by :func:`lingtan_proxy.app.create_app`)."""
    return current_app.extensions[EXTENSION]


def client_ip() -> str:
    return request.remote_addr or ""


def user_row():
    """The logged-in user as a row of this request's session (for views that change it)."""
    return g.db.get(User, (g.user or g.pending_user).id)


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES)
