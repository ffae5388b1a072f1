# tinkex developer tasks. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
BASE_URL ?=

.PHONY: install test lint typecheck demo bench check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DEMO_STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet -e '.[demo]'
	touch $(DEMO_STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check tinkex tests examples benchmarks
	$(PY) -m ruff format --check tinkex tests examples benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy

check: lint typecheck test

demo: $(DEMO_STAMP)
	$(if $(BASE_URL),TINKER_BASE_URL="$(BASE_URL)") $(PY) -m tinkex.demo

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
