"""Typed runtime settings, validated at start-up.

Every value can be set by an environment variable ``LINGTAN_<NAME>`` (e.g.
``LINGTAN_INFLUX_URL``) or an env file ``<state_dir>/lingtan.env`` written by ``lingtan up``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path("var")
PACKAGE_DIR = Path(__file__).resolve().parent
DEMO_PARK = PACKAGE_DIR / "data" / "demo_park.yaml"


class Settings(BaseSettings):
    """Endpoints and paths. Defaults are the local demo stack started by ``make up``."""

    model_config = SettingsConfigDict(env_prefix="LINGTAN_", extra="ignore", frozen=True)

    state_dir: Path = DEFAULT_STATE_DIR
    park_file: Path = DEMO_PARK
    # the tariffs energy cost is read with (docs/analysis.md §2); empty: the shipped demo tariff
    tariff_file: Path | None = None
    # a park's own 单位产品能源消耗限额 limits, added to the shipped ones (docs/analysis.md §7)
    limits_file: Path | None = None
    # the languages each scheduled report is written in (docs/analysis.md §8)
    report_languages: tuple[Literal["zh", "en"], ...] = ("zh",)
    # the notifier the scheduled reports are e-mailed through (docs/analysis.md §8); empty: not e-mailed
    notify_url: str = ""
    notify_token: str = ""  # its bearer token (the notifier's webhook token)

    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = Field("lingtan", pattern=r"^[A-Za-z0-9_\-/]+$")
    influx_rp: str = ""  # write retention policy; empty = the database default ("raw" after init)
    influx_user: str = "lingtan"
    influx_password: str = ""
    influx_timeout_s: float = Field(10.0, gt=0)

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_username: str = ""
    mqtt_password: str = ""
    opcua_endpoint: str = "opc.tcp://127.0.0.1:4840"
    modbus_host: str = "127.0.0.1"
    modbus_port: int = Field(5020, ge=1, le=65535)

    # relational data (users, audit, factors, production data): SQLite under the state dir by
    # default, PostgreSQL in docker-compose (postgresql+psycopg://...)
    database_url: str = ""
    calc_host: str = "127.0.0.1"
    calc_port: int = Field(8090, ge=1, le=65535)
    calc_interval_s: float = Field(60.0, gt=0)  # how often the current hour is recomputed
    # where the simulator posts its weather station's hourly observations (docs/simulator.md,
    # "Weather"): the calc-service's base URL; empty = calc_url; "off" = no weather feed
    weather_feed_url: str = ""

    # the auth proxy (front door): HTTPS with the park CA's server certificate unless a real one is set
    proxy_bind: str = "127.0.0.1"  # 0.0.0.0 to serve the park network
    proxy_port: int = Field(8443, ge=1, le=65535)
    proxy_http_port: int = Field(8080, ge=0, le=65535)  # plain HTTP, redirects only; 0 = off
    proxy_public_url: str = ""  # e.g. https://energy.park.example; default https://<host>:<proxy_port>
    proxy_tls_cert: Path | None = None
    proxy_tls_key: Path | None = None
    proxy_workers: int = Field(2, ge=1, le=64)
    proxy_threads: int = Field(16, ge=1, le=512)
    proxy_trusted_hops: int = Field(0, ge=0, le=3)  # reverse proxies in front whose X-Forwarded-For we believe
    grafana_url: str = ""  # Grafana behind the proxy (auth.proxy), e.g. http://grafana:3000; empty = none
    manual_config: Path | None = None  # the user manual's mkdocs.yml when not in a source checkout (the image)

    write_batch_size: int = Field(5000, ge=1, le=1_000_000)
    # how long a partial batch waits for more lines: bounds the write latency at low rates
    write_flush_interval_s: float = Field(0.25, gt=0)
    memory_queue_size: int = Field(100_000, ge=100)

    @field_validator("influx_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"influx_url {v!r} must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("grafana_url", "proxy_public_url")
    @classmethod
    def _optional_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} must start with http:// or https://")
        return v.rstrip("/")

    @property
    def calc_url(self) -> str:
        return f"http://{self.calc_host}:{self.calc_port}"

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'lingtan.db').resolve()}"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "lingtan.env"


def state_dir_from(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: ``explicit`` when given, else ``$LINGTAN_STATE_DIR``, else ``./var``.

    The one place that default is computed; every service and tool asks here.
    """
    return Path(str(explicit or os.environ.get("LINGTAN_STATE_DIR") or DEFAULT_STATE_DIR))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, then ``<state_dir>/lingtan.env``, then ``overrides``."""
    state_dir = state_dir_from(overrides.get("state_dir"))  # type: ignore[arg-type]
    env_file = state_dir / "lingtan.env"
    return Settings(_env_file=env_file if env_file.exists() else None, **overrides)  # type: ignore[call-arg]
