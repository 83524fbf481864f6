"""Grafana as code: dashboards and alert rules generated from Python (grafana-foundation-sdk), checked in
under ``dashboards/`` and ``grafana/provisioning/``, and tested against a live InfluxDB."""
