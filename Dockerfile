# Lingtan application image (lingtan/app): one image for every Python service of the production
# docker-compose stack (collectors, calc-service, auth proxy, notification bridge, demo simulators).
# The service is chosen by the command, e.g. `collect --protocol opcua`, `calc serve`, `proxy serve`.
#
#   docker compose build            # builds it as lingtan/app:<version in pyproject.toml>
#
# Base image pinned to an exact patch release in both stages (bump both deliberately, then rebuild).

# --------------------------------------------------------------------------- build: wheels
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lingtan/ lingtan/
# the workspace: one distribution per folder (WORKSPACE in the Makefile, docs/architecture.md)
COPY collectors/ collectors/
COPY calc-service/ calc-service/
COPY auth-proxy/ auth-proxy/
COPY notifier/ notifier/
COPY grafana/ grafana/
COPY influx/ influx/
COPY tools/ tools/
# the project and every dependency as wheels (binary wheels exist for all of them on linux x86_64/arm64)
RUN pip wheel --wheel-dir /wheels . ./collectors ./calc-service ./auth-proxy ./notifier ./grafana ./influx ./tools

# --------------------------------------------------------------------------- runtime
FROM python:3.11.11-slim-bookworm
LABEL org.opencontainers.image.title="lingtan" \
      org.opencontainers.image.description="Lingtan (零碳) energy-and-carbon platform: collectors, calc-service, auth proxy, notifier" \
      org.opencontainers.image.licenses="Apache-2.0"

# libpq5: psycopg 3 (PostgreSQL) loads the system libpq; tzdata: Asia/Shanghai for zoneinfo;
# fonts-wqy-zenhei: the CJK font the PDF reports embed (docs/analysis.md §8)
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 tzdata fonts-wqy-zenhei \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels \
      lingtan lingtan-collectors lingtan-calc lingtan-proxy lingtan-notify lingtan-grafana lingtan-influx lingtan-tools \
 && rm -rf /wheels

# a fixed non-root user; its home is the state directory (a named volume in docker-compose.yml:
# Docker copies this directory's ownership into a new volume, so the user can write it)
RUN groupadd --system --gid 10001 lingtan \
 && useradd --system --uid 10001 --gid lingtan --home-dir /var/lib/lingtan --shell /usr/sbin/nologin lingtan \
 && mkdir -p /var/lib/lingtan /etc/lingtan \
 && chown lingtan:lingtan /var/lib/lingtan \
 && chmod 0750 /var/lib/lingtan

# the user manual's sources: the proxy builds them into <state>/help-site/ on the first /help request
COPY mkdocs.yml /usr/share/lingtan/manual/mkdocs.yml
COPY docs/ /usr/share/lingtan/manual/docs/

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LINGTAN_STATE_DIR=/var/lib/lingtan \
    LINGTAN_MANUAL_CONFIG=/usr/share/lingtan/manual/mkdocs.yml

USER lingtan:lingtan
WORKDIR /var/lib/lingtan
ENTRYPOINT ["lingtan"]
CMD ["--help"]
