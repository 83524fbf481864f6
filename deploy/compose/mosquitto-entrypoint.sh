#!/bin/sh
# Entrypoint of the mosquitto service (docker-compose.yml): writes the password file from the
# environment (.env), then hands over to the image's own entrypoint, which fixes ownership of
# /mosquitto and starts the broker (it drops to the mosquitto user itself).
# The file is rewritten at every start, so .env is the only place the MQTT passwords live.
set -eu

: "${LINGTAN_MQTT_USERNAME:?set in .env}"
: "${LINGTAN_MQTT_PASSWORD:?set in .env}"
: "${MQTT_DEVICE_USERNAME:?set in .env}"
: "${MQTT_DEVICE_PASSWORD:?set in .env}"

dir=/mosquitto/auth
umask 077
mkdir -p "$dir"
mosquitto_passwd -c -b "$dir/passwd" "$LINGTAN_MQTT_USERNAME" "$LINGTAN_MQTT_PASSWORD"
mosquitto_passwd -b "$dir/passwd" "$MQTT_DEVICE_USERNAME" "$MQTT_DEVICE_PASSWORD"
chown -R mosquitto:mosquitto "$dir"
chmod 0700 "$dir"
chmod 0600 "$dir/passwd"

exec /docker-entrypoint.sh "$@"
