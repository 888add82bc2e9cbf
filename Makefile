# SmartVend: `make run` to try it, `make test` to check it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := mosquitto mosquitto-clients chromium postgresql nodejs npm
MPY_TESTS := tests/micropython

.PHONY: run test lint bench system-deps migrate clean help

help:
	@echo "make run    - set up and start SmartVend (API, pages, MQTT broker, demo machines)"
	@echo "make test   - set up and run every test"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - benchmarks; results go to docs/performance.md"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Services the tests start themselves (Mosquitto, PostgreSQL, Chromium) and Node.js
# (it runs MicroPython's WebAssembly port for the machine's tests) come from Debian.
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v mosquitto_sub >/dev/null || missing="$$missing mosquitto-clients"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

migrate: $(STAMP)
	$(BIN)/smartvend migrate

run: $(STAMP)
	@$(BIN)/python -m web.devrun

# MicroPython (WebAssembly) for the machine's tests, pinned by the lockfile.
$(MPY_TESTS)/node_modules/.package-lock.json: $(MPY_TESTS)/package-lock.json | system-deps
	cd $(MPY_TESTS) && npm ci --no-audit --no-fund

test: $(STAMP) system-deps $(MPY_TESTS)/node_modules/.package-lock.json lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP) system-deps
	$(BIN)/python -m tests.benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts $(MPY_TESTS)/node_modules
