# fanout: every habit has a target. `make run` and `make test` are the two that matter.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# npm packages the tests use (the official AsyncAPI JSON Schemas), from package-lock.json.
NODE_STAMP := node_modules/.package-lock.json
STACK ?= dev
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: help install run test check lint format unit infra-test e2e robustness browser browser-deps bench plan package \
        dist lock screenshot reset clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

$(STAMP): requirements-pip.lock requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fanout needs Python 3.11+")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# ensurepip's pip is old (known CVEs): a pinned, hashed pip installs everything else.
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-pip.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "the tests need Node.js and npm (for @asyncapi/specs)" >&2; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# The kit's dependencies as pinned wheels, for the test that installs the wheels into a clean virtualenv offline.
WHEELHOUSE := $(VENV)/wheelhouse/.done
$(WHEELHOUSE): $(STAMP) packages/fanout-kit/pyproject.toml packages/wheelhouse.py
	$(PY) packages/wheelhouse.py $(VENV)/wheelhouse
	@touch $@

install: $(STAMP) $(NODE_STAMP) $(WHEELHOUSE) ## create .venv and install the pinned dependencies (Python and npm)

run: $(STAMP) ## start the whole system locally (emulated AWS + API + web app)
	exec $(PY) -m fanout.local

test: lint unit infra-test e2e robustness browser ## every check: lint, unit, infra, end-to-end, fault/fuzz/security, browser

check: lint unit infra-test ## the everyday loop: lint, unit and infra tests (no stack started)

lint: $(STAMP) ## ruff format --check, ruff check, mypy (strict on fanout_kit and handlers) and zizmor
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/zizmor --offline .github/workflows

format: $(STAMP) ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

unit: $(STAMP) $(NODE_STAMP) $(WHEELHOUSE) ## unit tests (and event contract checks), offline and in-process
	$(PYTEST) -q tests/unit $(wildcard tests/contract)

infra-test: $(STAMP) $(NODE_STAMP) ## Pulumi program tests under mocks
	@if [ -n "$$(ls tests/infra/test_*.py 2>/dev/null)" ]; then $(PYTEST) -q tests/infra; else echo "no infra tests yet"; fi

e2e: $(STAMP) ## end-to-end tests against a local stack started as a subprocess
	$(PYTEST) -q tests/e2e

robustness: $(STAMP) ## fault injection, fuzzing and security tests
	@dirs="$$(ls -d tests/fault tests/fuzz tests/security 2>/dev/null)"; \
	if [ -n "$$dirs" ]; then $(PYTEST) -q $$dirs; else echo "no robustness tests yet"; fi

bench: $(STAMP) ## benchmarks: throughput, latency, AWS calls and cost, cold start, artifact sizes
	$(PY) -m bench $(if $(BENCH_JSON),--json $(BENCH_JSON))

screenshot: $(STAMP) browser-deps ## refresh docs/screenshot.png from the browser tests
	FANOUT_SCREENSHOT=1 $(PYTEST) -q tests/browser -k screenshot

browser-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2; exit 1; fi; }

browser: $(STAMP) browser-deps ## browser tests in headless Chromium against the local stack
	@if [ -n "$$(ls tests/browser/test_*.py 2>/dev/null)" ]; then $(PYTEST) -q tests/browser; else echo "no browser tests yet"; fi

lock: ## re-resolve the pinned dependencies (needs uv in .venv or on PATH)
	$(VENV)/bin/pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --no-header -o requirements-dev.lock
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.13 --python-platform aarch64-manylinux_2_28 --generate-hashes --no-header -o requirements-lambda.lock

reset: $(STAMP) ## forget the local state kept in .fanout/ (tables, archive, subscribed consumers)
	$(VENV)/bin/fanout reset

clean: ## remove local state, build output and the virtualenv
	rm -rf .fanout build dist $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache

package: $(STAMP) ## build the Lambda artifacts (handler zip + dependency layer) into build/
	$(PY) -m infra.package

# The two distributions other teams install (pyprojects in packages/, sources fanout_kit/, fanout_subscriber/, schemas/).
DIST ?= dist
WHEELS := packages/fanout-kit packages/fanout-subscriber
dist: $(STAMP) ## build the fanout-kit and fanout-subscriber wheels into dist/
	@mkdir -p $(DIST)
	@# setuptools keeps build/ between runs: a stale copy of a removed module must not reach a wheel.
	rm -rf $(addsuffix /build,$(WHEELS)) $(addsuffix /*.egg-info,$(WHEELS)) \
	  $(DIST)/fanout_kit-*.whl $(DIST)/fanout_subscriber-*.whl
	for p in $(WHEELS); do \
	  $(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w $(abspath $(DIST)) ./$$p \
	    || exit 1; done
	rm -rf $(addsuffix /build,$(WHEELS)) $(addsuffix /*.egg-info,$(WHEELS))
	@ls $(DIST)/fanout_kit-*.whl $(DIST)/fanout_subscriber-*.whl

plan: $(STAMP) ## print the resources STACK (dev|prd|fifo) would create, offline under Pulumi mocks (PROJECT=examples/subscriber: that project's; STRICT=1: fail on what pulumi up refuses; FANOUT_ALARM_EMAIL: prd's alarm address, as CI gives it)
	$(if $(PROJECT),$(PY) $(PROJECT)/plan.py --stack $(STACK),$(PY) -m infra.plan --stack $(STACK)$(if $(STRICT), --strict))
