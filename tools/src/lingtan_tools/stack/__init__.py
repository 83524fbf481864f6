"""The local stack: influxd and mosquitto from Debian packages with state under ``./var``, the
process supervisor for the services, and ``lingtan up|down|status`` (docs/deploy.md)."""
