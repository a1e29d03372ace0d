PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
DEMO ?= demo

.PHONY: install demo test test-fast lint type docs clean

# Each step says what it does before it starts; pip runs quietly (its errors still show).
$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip in $(VENV)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> installing mlopsctl and its development tools into $(VENV) (about a minute)"
	@$(BIN)/python -m pip install --quiet -e '.[dev,test]'
	@touch $(STAMP)
	@echo "==> installed: $(BIN)/mlopsctl"

install: $(STAMP)

## Generate a project with the embedded defaults in ./demo (DEMO=dir elsewhere), then validate it
demo: $(STAMP)
	@echo "==> generating $(DEMO)/ with the embedded defaults"
	@$(BIN)/mlopsctl init $(DEMO) --defaults --force --yes
	@echo "==> validating $(DEMO)/"
	@$(BIN)/mlopsctl validate $(DEMO)
	@echo "==> done. mlopsctl is $(BIN)/mlopsctl; to put it on PATH: . $(VENV)/bin/activate"

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
