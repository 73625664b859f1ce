# Two jobs for a fresh machine (see README.md): `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
OUT ?= demo-out
PRESET ?= quick

.PHONY: install demo test test-slow lint benchmark mutation clean

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
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

lint: install
	$(BIN)/ruff check src tests experiments benchmarks
	$(BIN)/ruff format --check src tests experiments benchmarks
	$(BIN)/lint-imports

# Mutation testing (docs/testing.md), not part of `make test`: MUTANTS='explainvec.evaluation.metrics.*'
# runs one module's mutants; results and surviving mutants are kept in mutants/ between runs.
MUTANTS ?=
MUTATION_JOBS ?= 1
mutation: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,mutation]'
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .hypothesis .import_linter_cache
