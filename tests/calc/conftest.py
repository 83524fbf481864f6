"""Fixtures of the calc-service tests: the two-enterprise example park, the calc app on a live InfluxDB
and a real SQLite database, and its test client (flaskr style: app, client)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lingtan.park.loader import parse_park
from lingtan.settings import Settings
from lingtan_calc.service.app import create_app
from tests.calc.parks import PARK_AB
from tests.calc.test_engine_influx import write_readings


@pytest.fixture
def park():
    return parse_park(PARK_AB, Path("ex2.yaml"))


@pytest.fixture
def app(influx_db, tmp_path, park):
    influx_db.query(f'CREATE RETENTION POLICY "raw" ON "{influx_db.database}" DURATION INF REPLICATION 1 DEFAULT',
                    database="")
    influx_db.query(f'CREATE RETENTION POLICY "accounting" ON "{influx_db.database}" DURATION INF REPLICATION 1',
                    database="")
    write_readings(influx_db, park)
    settings = Settings(state_dir=tmp_path, influx_url=influx_db.url, influx_db=influx_db.database,
                        influx_user=influx_db.username, influx_password=influx_db.password,
                        park_file=tmp_path / "ex2.yaml")
    app = create_app(settings, park=park, client=influx_db, start_scheduler=False)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()
