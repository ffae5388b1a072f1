# tinkex developer tasks. `make test` and `make demo` work on a fresh clone.
#   make install       the runtime package only (what `pip install tinkex` gives), into .venv
#   make dev           also the toolchain: tests, lint, types, the cookbook suite (= install-dev)
#   make test-min      the suite's core on Python 3.11 with every dependency at its declared
#                      minimum version (.ci/min-versions.txt), in .venv-min
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
COOKBOOK_STAMP := $(VENV)/.installed-cookbook
COOKBOOK_REQS := tests/cookbook/requirements.txt
COOKBOOK_VERSION := 0.6.1
BASE_URL ?=

MIN_PYTHON ?= python3.11
MIN_VENV ?= .venv-min
MIN_PY := $(MIN_VENV)/bin/python
MIN_CONSTRAINTS := .ci/min-versions.txt
MIN_STAMP := $(MIN_VENV)/.installed-min
# What test-min runs: everything that does not need the official tinker package (the compat,
# drop-in and cookbook suites, and test modules that import tinker: it needs newer versions of
# shared dependencies, zstandard>=0.24 for one, so it cannot be installed at the minimums).
MIN_TESTS ?= tests/unit tests/e2e tests/local tests/cli tests/recovery tests/examples tests/benchmarks
MIN_IGNORE = $(shell grep -rlE '^(import tinker|from tinker[. ])' $(MIN_TESTS) 2>/dev/null)

.PHONY: install dev install-dev install-cookbook test test-min lint typecheck demo examples \
	bench check clean

$(PY):
	@echo "Creating the virtual environment $(VENV) with $(PYTHON)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): $(PY) setup.cfg setup.py pyproject.toml tinkex/_alias/tinkex-as-tinker.pth
	@echo "Installing tinkex into $(VENV) (a minute or two the first time)..."
	$(PY) -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(PY) setup.cfg setup.py pyproject.toml tinkex/_alias/tinkex-as-tinker.pth
	@echo "Installing tinkex[dev] into $(VENV): the test and lint toolchain, the official tinker SDK and transformers (several minutes the first time)..."
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

# Offline machines with tinkex already installed still run the demo (without the PNG if
# matplotlib is missing); a fresh clone needs the install to succeed.
$(DEMO_STAMP): $(PY) setup.cfg pyproject.toml
	@echo "Installing tinkex[demo] into $(VENV) (a minute or two the first time)..."
	$(PY) -m pip install --quiet -e '.[demo]' || { $(PY) -c 'import tinkex' && \
		echo "warning: could not install tinkex[demo]; using the installed tinkex" >&2; }
	touch $(DEMO_STAMP)

# tinker-cookbook for tests/cookbook: its requirement tml-renderers>=0.4.1 is missing from the
# registry, so the cookbook is installed without dependencies and COOKBOOK_REQS lists the rest.
$(COOKBOOK_STAMP): $(STAMP) $(COOKBOOK_REQS)
	@echo "Installing tinker-cookbook $(COOKBOOK_VERSION) and its requirements for tests/cookbook..."
	$(PY) -m pip install --quiet -r $(COOKBOOK_REQS)
	$(PY) -m pip install --quiet --no-deps tinker-cookbook==$(COOKBOOK_VERSION)
	touch $(COOKBOOK_STAMP)

install: $(RUNTIME_STAMP)

dev install-dev: $(STAMP) $(COOKBOOK_STAMP)

install-cookbook: $(COOKBOOK_STAMP)

# The suite on TEST_WORKERS pytest-xdist workers (CI has 2 cores; most tests wait on child
# interpreters and local servers). A test file stays on one worker (--dist loadfile), so its
# module-scoped servers start once; `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(COOKBOOK_STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The declared minimums (setup.cfg) pinned exactly; tests/packaging checks both files agree.
$(MIN_STAMP): setup.cfg $(MIN_CONSTRAINTS)
	rm -rf $(MIN_VENV)
	$(MIN_PYTHON) -m venv $(MIN_VENV)
	$(MIN_PY) -m pip install --quiet -c $(MIN_CONSTRAINTS) -e '.[hf,demo,local-age]' \
		pytest pytest-timeout responses
	touch $(MIN_STAMP)

test-min: $(MIN_STAMP)
	$(MIN_PY) -m pip list --format=freeze | grep -iE "^($$(sed -n 's/==.*//p' $(MIN_CONSTRAINTS) | paste -sd'|'))=="
	$(MIN_PY) -m pytest -q -m "not compat" $(addprefix --ignore=,$(MIN_IGNORE)) $(MIN_TESTS)

lint: $(STAMP)
	$(PY) -m ruff check tinkex tests examples benchmarks
	$(PY) -m ruff format --check tinkex tests examples benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy
	$(PY) -m mypy benchmarks/*.py

check: lint typecheck test

# `make demo` trains against an embedded local server; `make demo BASE_URL=...` (or
# TINKER_BASE_URL/TINKER_API_KEY in the environment) against any Tinker-compatible server.
demo: $(DEMO_STAMP)
	$(if $(BASE_URL),TINKER_BASE_URL="$(BASE_URL)") $(PY) -m tinkex.demo $(DEMO_ARGS)

# Every script in examples/ (each starts an embedded local server unless TINKER_BASE_URL is set).
examples: $(STAMP)
	PYTHON=$(PY) examples/run_all.sh

bench: $(STAMP)
	$(PY) benchmarks/compare_sdks.py $(BENCH_ARGS)
	$(PY) benchmarks/local_model.py

clean:
	rm -rf $(VENV) $(MIN_VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
