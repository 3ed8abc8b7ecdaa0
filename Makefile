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

# The main job, on real data: validate the catalogs, import the help desk's ticket log
# (helpdesk.csv from $(PROMISE_DATA_DIR)) through its mapping into the database
# ($PROMISE_DATABASE_URL, default the SQLite file promise.db) and evaluate it with the
# help-desk promises, print an admin API key and the URLs, then serve API, worker,
# dispatcher and dashboard. Re-runnable: the import is idempotent.
# --no-live keeps the clock at the data's own time (2010-2014) instead of today's.
PROMISE_DATA_DIR ?= promises/examples/data
HELPDESK := promises/examples/helpdesk

run: install
	@test -f "$(PROMISE_DATA_DIR)/helpdesk.csv" || { echo "helpdesk.csv not found in \
	$(PROMISE_DATA_DIR): run 'make run PROMISE_DATA_DIR=/path/to/data'" >&2; exit 1; }
	$(BIN)/promise check promises
	$(BIN)/promise check $(HELPDESK)
	$(BIN)/promise check promises/examples/twitter
	$(BIN)/promise import "$(PROMISE_DATA_DIR)/helpdesk.csv" --mapping $(HELPDESK)/mapping.yaml \
	    --promises $(HELPDESK)
	@KEY=$$($(BIN)/promise keys create demo-$$(date +%s) --scopes admin) && \
	echo && echo "An admin API key for this demo: $$KEY" && \
	echo "  API        http://127.0.0.1:8000  (send 'Authorization: Bearer <key>')" && \
	echo "  OpenAPI    http://127.0.0.1:8000/docs" && \
	echo "  Dashboard  http://127.0.0.1:8000/ui  (log in with the key above)" && echo
	PROMISE_DIR=$(HELPDESK) $(BIN)/promise serve --port 8000 --no-live

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/promise check --strict promises
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
