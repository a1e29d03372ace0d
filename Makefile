PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint type docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,test]'
	touch $(STAMP)

install: $(STAMP)

## Generate a project with the embedded defaults in ./demo
demo: $(STAMP)
	$(BIN)/mlopsctl init demo --defaults --force

## What CI runs: lint, type checks, then the whole test suite, slow end-to-end layers included
test: lint type
	$(BIN)/python -m pytest -n 2 --dist loadgroup

## The inner loop: the tests but the slow end-to-end layers, nothing else
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow"

## ruff (lint and format) and the import layering contracts in pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check mlopsctl tests benchmarks
	$(BIN)/ruff format --check mlopsctl tests benchmarks
	$(BIN)/lint-imports --no-cache --no-logo

## mypy --strict
type: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/python -m mlopsctl.docsgen

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
