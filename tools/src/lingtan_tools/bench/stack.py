"""A private influxd (and mosquitto) on free ports for one benchmark run."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lingtan.influxdb import InfluxClient
from lingtan_influx.provision import init_influx
from lingtan_tools.stack.services import LocalInflux, LocalMosquitto, free_port


@dataclass
class BenchStack:
    state_dir: Path
    influx: LocalInflux
    mosquitto: LocalMosquitto | None
    user: str
    password: str

    def client(self, database: str) -> InfluxClient:
        return InfluxClient(self.influx.url, database, self.user, self.password, timeout_s=120)

    def fresh_database(self, name: str) -> InfluxClient:
        client = self.client(name)
        client.query(f'DROP DATABASE "{name}"', database="")
        client.query(f'CREATE DATABASE "{name}"', database="")
        return client


@contextmanager
def bench_stack(with_mqtt: bool = False) -> Iterator[BenchStack]:
    with tempfile.TemporaryDirectory(prefix="lingtan-bench-") as tmp:
        state = Path(tmp)
        influx = LocalInflux(state, free_port())
        mosq = LocalMosquitto(state, free_port()) if with_mqtt else None
        user, password = "bench", secrets.token_urlsafe(12)
        influx.start()
        try:
            if mosq is not None:
                mosq.start()
            init_influx(InfluxClient(influx.url, "lingtan", user, password), admin_user=user, admin_password=password)
            yield BenchStack(state, influx, mosq, user, password)
        finally:
            if mosq is not None:
                mosq.stop()
            influx.stop()
