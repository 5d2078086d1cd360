# Two commands on a fresh machine (Python 3.11 and make): `make demo`, `make test`.
# The pinned stack (dagster 1.13, great-expectations 1.24, statsmodels 0.15 ...) needs Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
NEED_PYTHON := 3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(DATA)/dagster_home
# the Python of an existing .venv ("" when there is none); another version means a stale .venv
VENV_PYTHON := $(shell test -x $(BIN)/python && $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV_STALE := $(if $(VENV_PYTHON),$(filter-out $(NEED_PYTHON),$(VENV_PYTHON)),)

.PHONY: install demo test test-slow test-all dev lint bench clean distclean mutation notebook check-python venv-stale

# fail early, naming the Python version needed (before any venv or pip work)
CHECK_PYTHON = v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	if [ "$$v" != "$(NEED_PYTHON)" ]; then \
	  echo "make: Python $(NEED_PYTHON) is needed (the pinned dependencies do not install on" \
	       "other versions); found '$(PYTHON)' $${v:-not runnable}." >&2; \
	  echo "      Install python$(NEED_PYTHON), or run: make PYTHON=/path/to/python$(NEED_PYTHON)" >&2; \
	  exit 1; \
	fi

check-python:  ## say whether the Python make would use is the one needed
	@$(CHECK_PYTHON); echo "$(PYTHON): Python $(NEED_PYTHON), as needed"

venv-stale:  # a prerequisite of the stamp only when .venv was made by another Python
	@echo "make: .venv was made by Python $(VENV_PYTHON), not $(NEED_PYTHON): rebuilding it"
	rm -rf $(VENV)

$(STAMP): pyproject.toml constraints.txt $(if $(VENV_STALE),venv-stale)
	@$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create the virtual environment with pinned versions

demo: install  ## generate the synthetic extract, materialise every asset, print the PDF path
	$(BIN)/python -m pipeline demo --months 3 || test $$? -eq 3  # 3: a warning check (named)

test: install  ## the test suite without the slow tests (4-5.5 minutes on 2 cores; target 3: docs/scaling.md)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow"

test-slow: install  ## the slow tests: extra whole-pipeline runs, faults, simulations
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m slow

test-all: install  ## every test
	$(BIN)/python -m pytest -n 2 --dist loadgroup

dev: install  ## Dagster UI on the same data (http://127.0.0.1:3000)
	mkdir -p $(DAGSTER_HOME) && test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check .

# make bench BENCH_SIZES=10000,100000 BENCH_ARGS="--time-limit-min 30 --mem-ceiling-gb 16"
BENCH_SIZES ?= 10000,100000,1000000
BENCH_ARGS ?=
bench: install  ## end-to-end scale benchmark: one table per asset (slow; benchmarks/bench_pipeline.py)
	$(BIN)/python benchmarks/bench_pipeline.py --sizes $(BENCH_SIZES) $(BENCH_ARGS)

notebook: install  ## JupyterLab on notebooks/ (opens the newest research snapshot; never blocks a run)
	$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[notebook]'
	$(BIN)/jupyter lab --notebook-dir=notebooks

mutation: install  ## mutation testing (mutmut, one worker; slow, kept out of `make test`)
	$(BIN)/python tools/mutation.py --max-children 1 $(MUTATION_ARGS)

clean:  ## remove generated data (landing, truth, reports, warehouse); keeps .venv and run history
	rm -rf $(DATA)/landing $(DATA)/truth $(DATA)/reports $(DATA)/warehouse.duckdb

distclean: clean  ## also remove .venv and everything under data/ (Dagster run history included)
	rm -rf $(VENV) $(DATA)
