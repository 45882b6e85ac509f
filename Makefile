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

# The bundled North Carolina sample to a class COG, GeoPackage, Shapefile and report.html in
# demo-output/ (workflows/landcover.yaml; a second run skips every current stage).
demo: $(STAMP)
	$(BIN)/geoseg run workflows/landcover.yaml

test: $(STAMP)
	$(BIN)/ruff check geoseg tests benchmarks examples
	$(BIN)/python -m pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check geoseg tests benchmarks examples
	$(BIN)/ruff format --check geoseg tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/predict.py

clean:
	rm -rf $(VENV) demo-output test-artifacts .pytest_cache
