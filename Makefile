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

## The whole test suite, slow end-to-end layers included
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

## The inner loop: everything but the slow end-to-end layers
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check mlopsctl tests benchmarks
	$(BIN)/ruff format --check mlopsctl tests benchmarks

type: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/python -m mlopsctl.docsgen

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
