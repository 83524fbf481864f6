#!/usr/bin/env bash
# Install the Debian packages Lingtan runs locally: influxdb (influxd 1.x), mosquitto, a CJK font, and
# postgresql (the tests run the SQL store on PostgreSQL as well as SQLite), chromium (portal
# browser tests), wrk (proxy benchmark) and docker-compose (tests/test_compose.py validates
# docker-compose.yml with `docker-compose config`; no Docker engine is needed or started).
# Idempotent and silent when both are present. Uses sudo when not root.
#
# Lingtan never uses the packages' system services: lingtan_tools.stack.services starts its own instances
# with configs from deploy/local/ and state under ./var. While installing we put a temporary
# /usr/sbin/policy-rc.d in place (unless one exists) so the postinst scripts do not start the
# services (only honoured by invoke-rc.d/deb-systemd-invoke; systemd itself is not touched). If
# a system influxd already listens on 8086, `lingtan up` says so and how to stop it.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
have influxd || missing+=(influxdb)
have mosquitto || missing+=(mosquitto)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# the portal's browser tests drive Debian's chromium with Playwright; the proxy benchmark uses wrk
have chromium || missing+=(chromium)
have wrk || missing+=(wrk)
# `docker-compose config` checks the production compose file (Debian's docker-compose 1.29)
have docker-compose || missing+=(docker-compose)
# a CJK font with TrueType outlines: the PDF reports embed it (reportlab embeds TrueType, not CFF),
# and chromium renders the portal's Chinese with it (docs/analysis.md, reports)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing+=(fonts-wqy-zenhei)
# Debian's python3 ships venv/ensurepip separately; `make venv` needs them.
python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 || python3 -c 'import ensurepip, venv' >/dev/null 2>&1 \
  || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-system-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: no apt-get; install these packages yourself: ${missing[*]}" >&2
  exit 1
fi

echo "install-system-deps: installing ${missing[*]} with apt-get" >&2
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, from lingtan scripts/install-system-deps.sh\nexit 101\n' \
    | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

for bin in influxd mosquitto; do
  have "$bin" || { echo "install-system-deps: $bin still missing after apt-get install" >&2; exit 1; }
done
