# Two commands on a fresh machine: `make run` and `make test` (each installs first if needed).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install run test test-fast ui bench clean-cache help

help:
	@echo "make install   create $(VENV) and install ncae-exp with its dev extras"
	@echo "make run       ncae-run protocol=explicit (default dataset ml-100k); extra overrides: make run ARGS='trainer.epochs=20'"
	@echo "make test      the whole test suite"
	@echo "make ui        the MLflow UI on the default local store (mlflow.db)"
	@echo "make bench     the benchmark (scripts/bench.py)"

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ncae-run protocol=explicit $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --port $${PORT:-5000}

bench: $(STAMP)
	$(BIN)/ncae-bench --out bench.json $(ARGS)

clean-cache:
	rm -rf data/processed
