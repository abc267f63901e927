# Two commands do everything on a fresh machine with Python and make:
#   make run   – install (if needed) and start the whole system locally
#   make test  – install (if needed) and run the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := libs/events libs/ops services/identity services/consent services/loans \
            services/sharing-gateway services/incident
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# `make test` runs on this many pytest-xdist workers, each a session with its own stack and
# broker (0: one session, in this process).
TEST_WORKERS ?= 2

.PHONY: install install-traces run run-tools test test-unit test-integration test-e2e lint typecheck deploy-check compliance bench bench-tools bench-blast-radius catalog \
        clean lock

$(STAMP): requirements.lock requirements-dev.lock $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation $(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

install: $(STAMP)

# The trace viewer `make run` starts (Arize Phoenix): its own venv from its own lock, never
# the services' (it pins its own fastapi/sqlalchemy and pulls LLM SDKs; ~860 MB, ~90 s).
TRACES_VENV := .venv-traces
TRACES_STAMP := $(TRACES_VENV)/.installed
$(TRACES_STAMP): requirements-traces.lock
	test -x $(TRACES_VENV)/bin/python || $(PYTHON) -m venv $(TRACES_VENV)
	$(TRACES_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements-traces.lock
	touch $(TRACES_STAMP)

install-traces: $(TRACES_STAMP)

run: $(STAMP) $(TRACES_STAMP) run-tools
	$(BIN)/expensura run

# The stack's own native tools, from Debian: Prometheus (`make run` scrapes the services with
# it and serves deploy/dashboards from it) and Chromium (the dashboards' headless test).
# Installed when run as root with apt; a policy-rc.d keeps the package from starting (and
# leaving running) a system-wide Prometheus on :9090. Otherwise a message says what's off.
RUN_TOOLS := prometheus chromium
run-tools:
	@missing=$$(for t in $(RUN_TOOLS); do command -v $$t >/dev/null || echo $$t; done); \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		policy=/usr/sbin/policy-rc.d; ours=; \
		if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' >$$policy; chmod +x $$policy; ours=1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		[ -z "$$ours" ] || rm -f $$policy; \
	fi; \
	for t in $$missing; do command -v $$t >/dev/null || echo "$$t is not installed (apt-get install $$t):" \
		"$$( [ $$t = prometheus ] && echo 'make run starts no Prometheus and no dashboards' \
		|| echo 'the dashboards test is skipped')"; done; true

# The README's test command (and CI's): static checks, the deployment, then every test. The
# run-command test (tests/e2e/test_run_command.py) runs `make run`, and so needs the trace
# viewer installed: installed here, before the tests (~85 s once), not inside that test.
test: lint typecheck deploy-check $(TRACES_STAMP) run-tools
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The test rings, by folder, across every package (a package without the folder is skipped):
#   unit: no I/O, no PostgreSQL, no broker; integration: real PostgreSQL/broker, in-process,
#   no HTTP between processes; e2e: service processes over HTTP.
ring = $(wildcard libs/*/tests/$(1) services/*/tests/$(1) tests/$(1))
# (Never a bare `pytest`: with no folder it would run every test.)
run-ring = $(if $(call ring,$(1)),$(BIN)/python -m pytest $(PYTEST_ARGS) $(call ring,$(1)),\
           @echo "no tests/$(1) folder in any package")
test-unit: $(STAMP)
	$(call run-ring,unit)
test-integration: $(STAMP)
	$(call run-ring,integration)
test-e2e: $(STAMP) $(TRACES_STAMP) run-tools
	$(call run-ring,e2e)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy libs/events/src libs/ops/src $(foreach s,identity consent loans sharing-gateway incident,services/$(s)/src) $(if $(wildcard bench/*.py),bench)

# deploy/ validated offline: overlays rendered, every object against its schema, network
# policies, gateway routes, dashboards and alerts against the metrics contract, compose file.
deploy-check: $(STAMP)
	$(BIN)/python -m expensura_ops.deploycheck .

compliance: $(STAMP)
	$(BIN)/expensura compliance $(PYTEST_ARGS)

catalog: $(STAMP)
	$(BIN)/expensura catalog --out docs/catalog

# The bench's own tools: the peer event store (eventsourcing, from requirements-bench.lock) and
# a native HTTP load generator (wrk, Debian's package; installed here when run as root with
# apt, else the bench says what it could not measure). Never part of `make run` or `make test`.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) requirements-bench.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements-bench.lock
	touch $(BENCH_STAMP)

bench-tools: $(BENCH_STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -qq wrk >/dev/null; } \
		|| echo "wrk is not installed (apt-get install wrk): the decision figures will be skipped"

BENCH_ARGS ?=
bench: bench-tools
	$(BIN)/python -m bench --write-doc $(BENCH_ARGS)

# The blast radius over 10 M synthetic index rows (a few minutes; figures in docs/performance.md).
bench-blast-radius: $(STAMP)
	$(BIN)/python -m bench.blast_radius

# Regenerate the lock files after editing requirements*.in (needs network; uses uv from the venv).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements.in -o requirements.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements-dev.in -o requirements-dev.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements-bench.in -o requirements-bench.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements-traces.in -o requirements-traces.lock

clean:
	rm -rf $(VENV) $(TRACES_VENV) var
