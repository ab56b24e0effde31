# Everything a fresh machine needs, installed by the targets themselves.
#   make demo   set up, then run the sample requests end to end on the local backend
#   make test   set up, then lint, type-check and run the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: setup demo test lint bench clean

# The first install takes a few minutes: each package is named as it is fetched.
$(BIN)/.installed: pyproject.toml
	@echo "installing into $(VENV) (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[dev]' \
	    | { grep --line-buffered -E '^(Collecting|Successfully installed)' || true; } | cut -c1-100
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/automl-service demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup lint
	AZURITE_QUEUE_BIN="$$(bash .ci/install-azurite.sh | tail -n 1)" $(BIN)/pytest -n 2 --dist worksteal --durations=15

bench: setup
	$(BIN)/python benchmarks/quality_benchmark.py --budget 20 --repeats 6 --origins 3
	$(BIN)/python -m benchmarks.scan_benchmark --children 10000
	$(BIN)/python benchmarks/intake_benchmark.py --messages 1000 --batch 4 --batch 32
	$(BIN)/python -m benchmarks.azure_calls
	$(BIN)/python -m benchmarks.turnaround --runs 5 --budget 20
	$(BIN)/python -m benchmarks.serving_speed --single 300 --batch 40
	$(BIN)/python -m benchmarks.fault_injection --requests 20 --kills 20 --workers 2 --slots 2 --budget 8

clean:
	rm -rf .automl-service .pytest_cache .mypy_cache .ruff_cache
