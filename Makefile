# The two commands a newcomer needs: `make run` and `make test`. Both build their own
# virtual environment from pyproject.toml on first use; only python3 must exist.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/promise check promises

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/promise check promises
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
