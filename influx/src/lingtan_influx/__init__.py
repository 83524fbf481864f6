"""InfluxDB set-up: the database, retention policies and continuous queries in ``influx/*.iql``,
applied through the v1 HTTP API (docs/schema.md)."""
