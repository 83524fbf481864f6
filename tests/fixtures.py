"""Session fixtures that run REAL local servers (influxd, mosquitto) on free loopback ports.

Each fixture yields a small handle with ``.port``, ``.url`` and ``.instance`` (the
:mod:`lingtan_tools.stack.services` object, so fault tests can ``kill()``/``stop()``/``start()`` it).
A test that stops or kills a server must start it again before it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from lingtan_tools.stack.services import LocalInflux, LocalMosquitto, free_port

INFLUX_USER = "admin"
INFLUX_PASSWORD = "lingtan-test-pw"
INFLUX_DB = "lingtan_test"


@dataclass
class InfluxServer:
    """A running influxd with auth enabled, an admin user and the database ``lingtan_test``."""

    instance: LocalInflux
    user: str = INFLUX_USER
    password: str = INFLUX_PASSWORD
    database: str = INFLUX_DB

    @property
    def port(self) -> int:
        """HTTP port on 127.0.0.1."""
        return self.instance.port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.instance.url

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run InfluxQL ``q`` (POST /query) as the admin user; raise on HTTP or statement errors."""
        params = {"u": self.user, "p": self.password, "q": q, "db": db or self.database}
        resp = requests.post(f"{self.url}/query", params=params, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        errors = [r["error"] for r in body.get("results", []) if "error" in r]
        if "error" in body or errors:
            raise RuntimeError(f"InfluxQL {q!r} failed: {body.get('error') or errors}")
        return body

    def write(self, lines: str, db: str | None = None, precision: str = "ns") -> None:
        """POST line protocol to /write; raise unless influxd answers 204."""
        params = {"db": db or self.database, "u": self.user, "p": self.password, "precision": precision}
        resp = requests.post(f"{self.url}/write", params=params, data=lines.encode(), timeout=30)
        if resp.status_code != 204:
            raise RuntimeError(f"/write answered {resp.status_code}: {resp.text}")


@dataclass
class MosquittoServer:
    """A running mosquitto accepting anonymous loopback clients."""

    instance: LocalMosquitto
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        """MQTT port on 127.0.0.1."""
        return self.instance.port

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return self.instance.url


def _bootstrap_influx(server: InfluxServer) -> None:
    """Create the admin user (allowed unauthenticated while no user exists) and the test database."""
    q = f"CREATE USER {server.user} WITH PASSWORD '{server.password}' WITH ALL PRIVILEGES"
    resp = requests.post(f"{server.url}/query", data={"q": q}, timeout=30)
    if resp.status_code != 200 or "error" in resp.text:
        raise RuntimeError(f"creating the influx admin user failed: {resp.status_code} {resp.text}")
    server.query(f"CREATE DATABASE {server.database}")


@pytest.fixture(scope="session")
def services_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state dir (``<tmp>/state``) shared by the session's servers, like ``./var`` for ``make up``."""
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def influxd(services_state_dir: Path) -> Iterator[InfluxServer]:
    """A real influxd for the whole session (auth on, admin user, database ``lingtan_test``)."""
    instance = LocalInflux(services_state_dir, free_port())
    instance.start()
    try:
        server = InfluxServer(instance)
        _bootstrap_influx(server)
        yield server
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def mosquitto(services_state_dir: Path) -> Iterator[MosquittoServer]:
    """A real mosquitto for the whole session (persistence on, anonymous loopback clients)."""
    instance = LocalMosquitto(services_state_dir, free_port(), autosave_interval=1)
    instance.start()
    try:
        yield MosquittoServer(instance)
    finally:
        instance.stop()


@pytest.fixture
def influx_db(influxd: InfluxServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh database on the session's influxd for one test, dropped afterwards."""
    from lingtan.influxdb import InfluxClient

    prefix = request.node.path.parent.name
    name = prefix + "_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    client = InfluxClient(influxd.url, name, influxd.user, influxd.password)
    client.query(f'DROP DATABASE "{name}"', database="")
    client.query(f'CREATE DATABASE "{name}"', database="")
    yield client
    client.query(f'DROP DATABASE "{name}"', database="")


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<v>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make test` installs it (scripts/install-system-deps.sh)")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A private PostgreSQL cluster on a free loopback port; yields its SQLAlchemy URL.

    initdb refuses to run as root, so under root the cluster belongs to the ``postgres`` system
    user that the Debian package creates (``runuser``). fsync is off: the data is thrown away.
    """
    import os
    import shutil
    import subprocess
    import tempfile

    bin_dir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="lingtan-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    as_root = os.geteuid() == 0
    if as_root:
        for p in (base, sock):
            shutil.chown(p, "postgres", "postgres")
    port = free_port()

    def run(*args: str) -> None:
        cmd = (["runuser", "-u", "postgres", "--"] if as_root else []) + list(args)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            log = (base / "pg.log").read_text() if (base / "pg.log").exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {res.stdout}{res.stderr}{log}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--encoding=UTF8", "--locale=C")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "pg.log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
