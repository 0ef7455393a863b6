# The two commands of the README's quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CLIENT_VENV ?= /tmp/registrar-client-venv

.PHONY: run test lint postgres-test bench clean client-install-check

# The server and, beside it, the Python client (clients/python) with its test extras.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e './clients/python[test]'
	touch $(STAMP)

## Install, fill the embedded SQLite database with demo data (once), and serve on :8000.
run: $(STAMP)
	$(BIN)/registrar demo --if-empty
	$(BIN)/registrar serve

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
