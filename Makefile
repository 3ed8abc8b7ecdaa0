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
# dispatcher and dashboard on $(HOST):$(PORT). Re-runnable: the import is idempotent, and
# the demo's admin key (kept in $(DEMO_KEY), readable by you only) is reused while the
# database still knows it. --no-live keeps the clock at the data's own time (2010-2014).
PROMISE_DATA_DIR ?= promises/examples/data
HELPDESK := promises/examples/helpdesk
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_KEY ?= .demo-key

run: install
	@test -f "$(PROMISE_DATA_DIR)/helpdesk.csv" || { echo "helpdesk.csv not found in \
	$(PROMISE_DATA_DIR): run 'make run PROMISE_DATA_DIR=/path/to/data'" >&2; exit 1; }
	$(BIN)/promise check promises
	$(BIN)/promise check $(HELPDESK)
	$(BIN)/promise check promises/examples/twitter
	$(BIN)/promise import "$(PROMISE_DATA_DIR)/helpdesk.csv" --mapping $(HELPDESK)/mapping.yaml \
	    --promises $(HELPDESK)
	@if [ -s $(DEMO_KEY) ] && $(BIN)/promise keys list | \
	    grep -q "^$$(cut -d' ' -f1 $(DEMO_KEY))	admin	.*	active$$"; then \
	  KEY=$$(cut -d' ' -f2 $(DEMO_KEY)); WHAT="The demo's admin API key (from $(DEMO_KEY))"; \
	else \
	  NAME=demo-$$(date +%s) && KEY=$$($(BIN)/promise keys create $$NAME --scopes admin) && \
	  (umask 077 && echo "$$NAME $$KEY" > $(DEMO_KEY)) && WHAT="A new admin API key for this demo"; \
	fi && \
	echo && echo "$$WHAT: $$KEY" && \
	echo "  (list keys: $(BIN)/promise keys list; revoke one: $(BIN)/promise keys revoke NAME)" && \
	echo "  API        http://$(HOST):$(PORT)  (send 'Authorization: Bearer <key>')" && \
	echo "  OpenAPI    http://$(HOST):$(PORT)/docs" && \
	echo "  Dashboard  http://$(HOST):$(PORT)/ui  (log in with the key above)" && echo
	PROMISE_DIR=$(HELPDESK) $(BIN)/promise serve --host $(HOST) --port $(PORT) --no-live

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest spreads the tests over $(TEST_WORKERS) processes (pytest-xdist: each starts on its
# share and then takes over tests still waiting in the other's), each with its own PostgreSQL
# database and temporary folders; `make test TEST_WORKERS=0` runs them in one process.
# The suite starts hundreds of Python processes (`promise` commands, servers with their
# workers): PYTHONDONTWRITEBYTECODE is cleared so that they share the project's bytecode
# instead of each compiling it again.
TEST_WORKERS ?= 2

test: lint
	$(BIN)/promise check --strict promises
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
