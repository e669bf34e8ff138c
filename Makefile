# Two commands for a fresh machine: `make demo` and `make test`.
# Uses the active virtual environment (or the activated `mailaudit` conda env);
# otherwise creates .venv here. Everything is installed from pyproject.toml.

PYTHON ?= python3
VENV ?= .venv

ifdef VIRTUAL_ENV
  PY := $(VIRTUAL_ENV)/bin/python
else ifeq ($(CONDA_DEFAULT_ENV),mailaudit)
  PY := $(CONDA_PREFIX)/bin/python
else
  PY := $(VENV)/bin/python
endif

STAMP := $(dir $(PY)).mailaudit-installed

.PHONY: install demo test check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then echo "creating virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

demo: install
	$(PY) -m mailaudit.cli demo

test: install
	$(PY) -m pytest -q

check: install
	$(PY) -m mailaudit.cli check --params params/demo.yaml

clean:
	rm -rf reports/demo data/demo.sqlite data/demo.snapshot.duckdb data/demo.truth.json data/demo-logs
