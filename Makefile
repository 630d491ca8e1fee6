# The verbs people type. Every target installs what it needs first (uv + the locked virtualenv).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null)
# Without uv on the PATH, uv itself is bootstrapped into a virtualenv of its own outside the
# checkout (a user cache, shared by clones), so no third-party tooling lives in the repository.
UV_BOOTSTRAP ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mlloop/uv-$(UV_VERSION)
ifeq ($(UV),)
UV := $(UV_BOOTSTRAP)/bin/uv
endif
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
# pytest-xdist workers for the unit and dag.test() tests: one per core ("make test TEST_WORKERS=0"
# runs them in one process).
TEST_WORKERS ?= auto
# .pyc files are compiled at install time: the environment may forbid writing them later
# (PYTHONDONTWRITEBYTECODE), and without them every task re-compiles Airflow, Feast, MLflow... and
# every DAG parse and task our own include/ and plugins/ (0.1 s for drift_monitoring.py, bench B1).
# A file edited later is compiled in memory (Python checks each .pyc against its source).
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install demo replay land-dataset up down status test test-fast test-services lint format feast-apply mlflow-ui bench bench-smoke clean \
	scaled-demo scaled-up scaled-down compose-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV_BOOTSTRAP)/bin/uv:
	$(PYTHON) -m venv $(UV_BOOTSTRAP)
	$(UV_BOOTSTRAP)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	$(PY) -m compileall -q include plugins cli
	@touch $@

install: $(VENV)/.synced  ## create .venv from uv.lock (uv is bootstrapped if missing)

demo: install  ## run the whole loop on a local Airflow 3 and leave the UI up
	$(VENV)/bin/mlloop demo

replay: install  ## the loop over landed history: make replay USE_CASE=hourly_temps FROM=2010-01-01 TO=2010-03-31
	@test -n "$(USE_CASE)" -a -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make replay USE_CASE=<name> FROM=YYYY-MM-DD TO=YYYY-MM-DD"; exit 2; }
	$(VENV)/bin/mlloop replay --use-case $(USE_CASE) --from $(FROM) --to $(TO)

land-dataset: install  ## land the bundled real data set: make land-dataset FROM=2010-01-01 TO=2010-03-31
	$(VENV)/bin/mlloop land-dataset hourly_temps --start $(FROM) --end $(TO)

up: install  ## start the local Airflow 3 (no demo data)
	$(VENV)/bin/mlloop up

down:  ## stop the local Airflow
	@if [ -x $(VENV)/bin/mlloop ]; then $(VENV)/bin/mlloop down; fi

status: install  ## is the local Airflow up, and its login
	$(VENV)/bin/mlloop status

# Two passes: the unit and dag.test() tests on every core (pytest-xdist; each worker has its own
# AIRFLOW_HOME and MLLOOP_HOME), then the tests that start whole deployments (a scheduler, the
# scaled topology, a browser), one at a time: on a small machine they must not share the cores.
# Either pass fails if it selects no test (pytest's exit code 5). The second pass lists its slowest
# tests (setup included: a module's Airflow boots in its first test's setup), where CI time goes.
FAST_TESTS := not e2e and not services and not browser

test: install  ## the whole test suite: unit, Airflow integration, end to end
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "$(FAST_TESTS)"
	$(VENV)/bin/pytest -m "not ($(FAST_TESTS))" --durations=15

test-fast: install  ## unit and integration tests, without the end-to-end ones
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "$(FAST_TESTS)"

test-services: install  ## the loop on the scaled topology (needs this machine's PostgreSQL and Redis)
	MLLOOP_REQUIRE_SERVICES=1 $(VENV)/bin/pytest -m services

scaled-demo: install  ## the whole loop on the scaled topology as local processes (Celery, Postgres, Redis, S3)
	$(VENV)/bin/mlloop scaled demo

scaled-up: install  ## start the scaled topology as local processes (no demo data)
	$(VENV)/bin/mlloop scaled up

scaled-down:  ## stop the scaled topology, drop its databases and Redis DBs
	@if [ -x $(VENV)/bin/mlloop ]; then $(VENV)/bin/mlloop scaled down; fi

compose-check: install  ## validate docker-compose.yaml and lint the Dockerfile (no Docker needed)
	$(VENV)/bin/pytest tests/deploy

lint: install  ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

feast-apply: install  ## deploy feature_repo/ into the Feast registry of $$MLLOOP_HOME
	@eval "$$($(PY) -c 'from mlloop.settings import get_settings; s=get_settings(); s.prepare_local_paths(); print(" ".join(f"export {k}=\x27{v}\x27;" for k, v in s.feast_environment().items()))')" && \
		cd feature_repo && $(VENV)/bin/feast apply

mlflow-ui: install  ## browse runs, models and aliases of the local MLflow store
	$(PY) -c 'from mlloop.settings import get_settings; print(get_settings().mlflow_tracking_uri)' | \
		xargs -I{} $(VENV)/bin/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri {}

BENCH_SIZE ?= default
bench: install  ## benchmarks vs their raw limits: make bench [BENCH_SIZE=smoke|default|full] (bench/README.md)
	$(PY) -m bench --size $(BENCH_SIZE)

bench-smoke: install  ## the benchmarks at toy sizes, so they cannot rot (part of .ci/run; no targets checked)
	$(PY) -m bench --size smoke --out $(CURDIR)/test-artifacts/bench

clean: down scaled-down  ## remove the local state (.mlloop, .mlloop-scaled) and caches
	rm -rf .mlloop .mlloop-scaled .pytest_cache .mypy_cache .ruff_cache
