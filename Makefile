# Two jobs for a fresh machine (see README.md): `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
OUT ?= demo-out
PRESET ?= quick

.PHONY: install demo test test-slow lint benchmark clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

demo: install
	$(BIN)/explainvec demo --preset $(PRESET) --out $(OUT)

test: install
	$(BIN)/ruff check src tests experiments benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

lint: install
	$(BIN)/ruff check src tests experiments benchmarks
	$(BIN)/ruff format --check src tests experiments benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .hypothesis .import_linter_cache
