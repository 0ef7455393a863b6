# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CLIENT_VENV ?= /tmp/registrar-client-venv
PORT   ?= 8000
# The demo account's key, kept between runs of `make run` (git ignores it).
DEMO_KEY_FILE := .registrar-demo-key

.PHONY: run test lint postgres-test bench clean client-install-check

# The server and, beside it, the Python client (clients/python) with its test extras.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e './clients/python[test]'
	touch $(STAMP)

## Install, fill the embedded SQLite database with demo data (once), and serve on :$(PORT)
## (`make run PORT=8001` for another port). A rerun keeps the demo key it printed before.
## Webhooks may go to receivers on this machine (REGISTRAR_WEBHOOK_ALLOW_PRIVATE; a deployment
## leaves it off).
run: $(STAMP)
	@$(BIN)/python -c 'import socket; socket.create_server(("127.0.0.1", $(PORT))).close()' 2>/dev/null \
	  || { echo "error: port $(PORT) is in use; try: make run PORT=8001" >&2; exit 1; }
	$(BIN)/registrar demo --if-empty --url http://127.0.0.1:$(PORT) --key-file $(DEMO_KEY_FILE)
	REGISTRAR_WEBHOOK_ALLOW_PRIVATE=$${REGISTRAR_WEBHOOK_ALLOW_PRIVATE:-true} $(BIN)/registrar serve --port $(PORT)

## Install and run the whole test suite (SQLite).
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench clients
	$(BIN)/ruff format --check src tests bench clients
	$(BIN)/mypy
	cd clients/python && $(abspath $(BIN))/mypy

## The client installs alone: a fresh venv, no server dependencies, and it imports and works.
client-install-check:
	rm -rf $(CLIENT_VENV) && $(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/pip install -q ./clients/python
	$(CLIENT_VENV)/bin/python clients/python/install_check.py

## The same suite on PostgreSQL (needs a server; CI starts one).
postgres-test: $(STAMP)
	REGISTRAR_TEST_POSTGRES_URL=$${REGISTRAR_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres} $(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
