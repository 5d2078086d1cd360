# Two commands on a fresh machine (Python 3.11 and make): `make demo`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(DATA)/dagster_home

.PHONY: install demo test dev lint bench clean mutation

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create the virtual environment with pinned versions

demo: install  ## generate the synthetic extract, materialise every asset, print the PDF path
	$(BIN)/python -m pipeline demo

test: install  ## the whole test suite
	$(BIN)/python -m pytest -n 2

dev: install  ## Dagster UI on the same data (http://127.0.0.1:3000)
	mkdir -p $(DAGSTER_HOME) && test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check .

bench: install  ## benchmarks (slow; kept apart from the tests)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

mutation: install  ## mutation testing (mutmut, one worker; slow, kept out of `make test`)
	$(BIN)/python tools/mutation.py --max-children 1 $(MUTATION_ARGS)

clean:
	rm -rf $(DATA)/landing $(DATA)/truth $(DATA)/reports $(DATA)/warehouse.duckdb
