"""Root conftest: the shared fixtures (real influxd and mosquitto) for tests/ and collectors/."""

pytest_plugins = ["tests.fixtures"]
