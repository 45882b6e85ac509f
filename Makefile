# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs geoseg with everything it needs.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/ruff check geoseg tests benchmarks examples
	$(BIN)/python -m pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check geoseg tests benchmarks examples
	$(BIN)/ruff format --check geoseg tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/predict.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
