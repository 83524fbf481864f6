# Lingtan developer entry points. Everything runs from the repo root, on Debian/Ubuntu.
#   make up    venv + system packages, then start the local stack (state in ./var, no systemd)
#   make down  stop everything `make up` started
#   make test  venv + system packages, then the whole test suite (real influxd/mosquitto)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
STAMP  := $(VENV)/.stamp
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: venv system-deps setup up down test bench lint

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# The workspace: the shared core (this folder) and one distribution per service or tool folder,
# each with its own pyproject.toml and its import name under src/ (docs/architecture.md).
WORKSPACE := collectors calc-service auth-proxy notifier grafana influx tools

# Re-install only when a pyproject.toml changed since the last successful install.
$(STAMP): pyproject.toml $(foreach d,$(WORKSPACE),$(d)/pyproject.toml) | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]' $(foreach d,$(WORKSPACE),-e ./$(d))
	touch $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

setup: system-deps
	@$(MAKE) --no-print-directory venv

up: setup
	$(VENV)/bin/lingtan up

down:
	$(VENV)/bin/lingtan down

test: setup
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(PY) -m lingtan_tools.bench

lint: venv
	$(VENV)/bin/ruff check .
