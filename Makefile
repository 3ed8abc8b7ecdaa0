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

# The main job: validate the catalog, evaluate a deterministic synthetic history into the
# SQLite default (promise.db), print an admin API key, then serve the API on port 8000.
# --no-live keeps the clock at the demo data's own time (2024) instead of today's.
run: install
	$(BIN)/promise check promises
	$(BIN)/python bench/synthetic.py --records 20000 > demo-history.jsonl
	$(BIN)/promise replay demo-history.jsonl --db sqlite:///promise.db
	@echo "An admin API key for this demo (send it as 'Authorization: Bearer <key>'):"
	@$(BIN)/promise keys create demo-$$(date +%s) --scopes admin
	$(BIN)/promise serve --port 8000 --no-live

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/promise check promises
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
