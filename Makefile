# The README's first two commands: `make demo` and `make test`.
# Both install everything on a fresh Debian 12 machine (as root, or with sudo):
# the Debian packages, the virtualenv and the project. Installing twice is a no-op.
# `make test` also installs and starts PostgreSQL (.ci/postgres-up): the registry
# tests run on SQLite and on PostgreSQL.

SHELL := /bin/bash
# The system Python: the station service runs as its own user, and operators' clients as
# theirs, so the interpreter must not live in root's home (pyenv does).
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := pcscd vsmartcard-vpcd softhsm2 opensc libpcsclite-dev swig gcc \
                python3-venv python3-dev iproute2 util-linux pamtester libpam-modules \
                chromium poppler-utils fonts-ipafont-gothic libpq5 libengine-pkcs11-openssl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps venv users demo test unit lint bench fuzz clean

all: test

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml | deps
	@if [ -x $(PY) ] && [ "$$(readlink -f $(PY))" != "$$(readlink -f $(PYTHON))" ]; then \
	  echo "rebuilding $(VENV) on $(PYTHON)"; rm -rf $(VENV); fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,postgres]'
	@touch $(STAMP)

venv: deps $(STAMP)

# The station service's user `juki` and the operators' group (and, for the tests, an
# unprivileged operator `juki-op`).
users:
	bash .ci/station-users --test-operator

demo: venv users
	$(VENV)/bin/juki demo

# ruff; the import directions of docs/architecture.md (import-linter contracts in
# pyproject.toml); no module over 400 lines, no function over 60.
lint: venv
	$(VENV)/bin/ruff check cardlib hsm tools tests bench .ci
	$(VENV)/bin/lint-imports
	$(PY) .ci/sizes.py

# The whole suite on SQLite (registry rules on PostgreSQL too, as a superuser over the local
# socket; every tier: unit, integration, cli, conformance), then the integration and CLI
# tiers again with the station's registry on PostgreSQL as production has it: TLS only,
# each station its own role proven by a client certificate whose key is in its token
# (.ci/postgres-up; docs/deployment.md). The pass's database is made as a registry operator
# makes one (.ci/registry-suite-db): owned by juki_owner, migrated by `juki db upgrade` as
# the owner, its recipient table loaded by the operator.
test: venv lint users
	registry_env="$$(bash .ci/postgres-up)" && eval "$$registry_env" && \
	$(PY) -m pytest -q -p no:cacheprovider && \
	bash .ci/registry-suite-db juki_suite && \
	JUKI_DB="$$JUKI_REGISTRY_STATION_URL" $(PY) -m pytest -q -p no:cacheprovider tests/integration tests/cli

unit: venv
	$(PY) -m pytest -q tests/unit

# Raw APDUs to an issued emulated card against real-card.md, and OpenSC (starts the rig).
conformance: venv users
	$(PY) -m pytest -q -p no:cacheprovider tests/conformance

# The provision-log figures on both databases: PostgreSQL from .ci/postgres-up.
bench: venv
	$(PY) bench/run.py
	$(PY) bench/card_alone.py
	$(PY) bench/issuance.py
	$(PY) bench/counter.py
	$(PY) bench/login.py
	eval "$$(bash .ci/postgres-up)" && $(PY) bench/audit.py && $(PY) bench/provide.py
	$(PY) bench/cli_startup.py

# Coverage-guided fuzzing (atheris) of every host parser and emulator command handler
# (tests/fuzz): FUZZ_SECONDS per target (default: about ten minutes in all, two targets at
# a time), FUZZ_TARGETS to pick some. Crash inputs land in fixtures/fuzz/<target>/.
FUZZ_SECONDS ?=
FUZZ_TARGETS ?=
fuzz: venv
	$(PY) -m pip install -q -e '.[fuzz]'
	FUZZ_SECONDS="$(FUZZ_SECONDS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" nice -n 19 $(PY) tests/fuzz/run.py

clean:
	rm -rf $(VENV) *.egg-info
