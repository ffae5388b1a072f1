# tinkex developer tasks. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
COOKBOOK_STAMP := $(VENV)/.installed-cookbook
COOKBOOK_REQS := tests/cookbook/requirements.txt
COOKBOOK_VERSION := 0.6.1
BASE_URL ?=

.PHONY: install install-cookbook test lint typecheck demo examples bench check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) setup.cfg setup.py pyproject.toml tinkex/_alias/tinkex-as-tinker.pth
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Offline machines with tinkex already installed still run the demo (without the PNG if
# matplotlib is missing); a fresh clone needs the install to succeed.
$(DEMO_STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet -e '.[demo]' || { $(PY) -c 'import tinkex' && \
		echo "warning: could not install tinkex[demo]; using the installed tinkex" >&2; }
	touch $(DEMO_STAMP)

# tinker-cookbook for tests/cookbook: its requirement tml-renderers>=0.4.1 is missing from the
# registry, so the cookbook is installed without dependencies and COOKBOOK_REQS lists the rest.
$(COOKBOOK_STAMP): $(STAMP) $(COOKBOOK_REQS)
	$(PY) -m pip install --quiet -r $(COOKBOOK_REQS)
	$(PY) -m pip install --quiet --no-deps tinker-cookbook==$(COOKBOOK_VERSION)
	touch $(COOKBOOK_STAMP)

install: $(STAMP) $(COOKBOOK_STAMP)

install-cookbook: $(COOKBOOK_STAMP)

test: $(STAMP) $(COOKBOOK_STAMP)
	$(PY) -m pytest -q

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
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
