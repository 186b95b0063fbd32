# Two entry points for a fresh machine: `make demo` and `make test`. Every pip install uses constraints.txt.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet -c constraints.txt
DEMO_DIR ?= demo-out

.PHONY: demo test lint format install dev clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

# The main job: the embedded default comparison (digits, simple_cnn, 8 activations x 5 seeds) and its report.
demo: $(VENV)/.installed
	$(BIN)/actlab compare --out $(DEMO_DIR)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=10

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests tools
	$(BIN)/ruff check --fix src tests tools

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
