#!/bin/bash
# InfluxDB 2.x set-up for Lingtan (docker-compose.yml, service influxdb), run ONCE by the image's
# entrypoint right after `influx setup` created the org, the admin and the raw bucket
# (DOCKER_INFLUXDB_INIT_*), against the temporary set-up instance, with the admin token as the
# active `influx` CLI config. Scripts here only run when the data volume is new.
#
# Lingtan talks to InfluxDB through the v1 compatibility API only (InfluxQL + user/password,
# docs/deploy.md, InfluxDB 2.x), so 2.x needs:
#   * buckets: <raw bucket> (created by setup, DOCKER_INFLUXDB_INIT_BUCKET, retention
#     DOCKER_INFLUXDB_INIT_RETENTION) and lingtan-accounting (the calc-service's results, kept forever);
#   * explicit DBRP mappings (virtual ones vary by version): the collectors write without `rp`
#     (the database default), the calc-service and the dashboards name "raw" and "accounting":
#       lingtan/raw        -> raw bucket (default)
#       lingtan/autogen    -> raw bucket (the 1.x default name, for tools that assume it)
#       lingtan/accounting -> lingtan-accounting
#   * v1 authorizations: LINGTAN_INFLUX_USER reads and writes both buckets (collectors,
#     calc-service, auth proxy, Telegraf); GRAFANA_INFLUX_USER only reads them (the provisioned
#     Grafana datasource).
# There are no retention policies or continuous queries to create on 2.x, so `lingtan influx init`
# (1.x only) is not run in the compose stack.
#
# Changing a password later: `docker compose exec influxdb influx v1 auth set-password --username NAME`
# (this script does not run again on an existing volume).
set -euo pipefail

db=lingtan
org_id=${DOCKER_INFLUXDB_INIT_ORG_ID:?set by the influxdb image entrypoint}
raw_id=${DOCKER_INFLUXDB_INIT_BUCKET_ID:?set by the influxdb image entrypoint}
accounting_bucket=lingtan-accounting
writer=${LINGTAN_INFLUX_USER:?}
writer_password=${LINGTAN_INFLUX_PASSWORD:?}
reader=${GRAFANA_INFLUX_USER:?}
reader_password=${GRAFANA_INFLUX_PASSWORD:?}

log() { echo "lingtan-influx-init: $*" >&2; }

bucket_id() { influx bucket list --org-id "$org_id" --name "$1" --hide-headers | cut -f 1; }

if [ -z "$(bucket_id "$accounting_bucket" 2>/dev/null || true)" ]; then
  influx bucket create --org-id "$org_id" --name "$accounting_bucket" --retention 0 \
    --description "Lingtan calc-service results (energy tce, CO2, intensities, flows); never expire" >/dev/null
fi
accounting_id=$(bucket_id "$accounting_bucket")
log "buckets: raw ${raw_id}, ${accounting_bucket} ${accounting_id}"

influx v1 dbrp create --org-id "$org_id" --db "$db" --rp raw --bucket-id "$raw_id" --default >/dev/null
influx v1 dbrp create --org-id "$org_id" --db "$db" --rp autogen --bucket-id "$raw_id" >/dev/null
influx v1 dbrp create --org-id "$org_id" --db "$db" --rp accounting --bucket-id "$accounting_id" >/dev/null
log "DBRP mappings: ${db}/raw (default) and ${db}/autogen -> raw bucket, ${db}/accounting -> ${accounting_bucket}"

influx v1 auth create --org-id "$org_id" --username "$writer" --password "$writer_password" \
  --read-bucket "$raw_id" --write-bucket "$raw_id" \
  --read-bucket "$accounting_id" --write-bucket "$accounting_id" \
  --description "Lingtan services (read/write)" >/dev/null
influx v1 auth create --org-id "$org_id" --username "$reader" --password "$reader_password" \
  --read-bucket "$raw_id" --read-bucket "$accounting_id" \
  --description "Grafana datasource (read-only)" >/dev/null
log "v1 users: ${writer} (read/write), ${reader} (read-only)"
