# Quick start: `make demo`, `make test`, `make dev`. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DAGSTER_HOME

.PHONY: install demo test lint dev bench clean

$(BIN)/.installed: pyproject.toml setup.py
	@echo "== installing event_platform and its dependencies into $(VENV) (about a minute the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --progress-bar off -e ".[test]"
	@echo "== installed"
	touch $@

install: $(BIN)/.installed

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster/dev.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster/dev.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	@echo "== ingesting data/samples/sample_events.jsonl: validate, store, reconcile, check, publish"
	@$(BIN)/event-platform ingest --force data/samples/sample_events.jsonl
	@echo "== The sample holds a few deliberately broken lines, so the rejection_rate check (WARN"
	@echo "   above 1% rejected) fails by design. Next: make dev (the UI on http://127.0.0.1:3000)"
	@echo "   or .venv/bin/event-platform serve (the API on http://127.0.0.1:8080/docs)."

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The ingestion benchmark (5M lines, 3 runs, peers, memory at 1M/5M/10M); pass options with
# BENCH_ARGS, e.g. `make bench BENCH_ARGS="--lines 1000000 --memory-sizes ''"`.
bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m benchmarks.ingest_bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .dagster_home .pytest_cache .ruff_cache
