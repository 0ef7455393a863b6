"""Fixtures for the Python client's tests: one live `registrar serve` for the package (loaded
with the extract in support.py), and the client flavours.

Self-contained for now (see support.py); it moves into tests/support/ with the suite's layout.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.client import ALL_SCOPES, PETITIONS_READ, READ, LiveServer, extract, live_server


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("client-live")) as server:
        server.load(extract())
        yield server


@pytest.fixture(scope="session")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own for the events feed and webhooks, whose tests count events and
    expire cursors (webhooks may go to a receiver on this machine)."""
    settings = {"REGISTRAR_WEBHOOK_ALLOW_PRIVATE": "true"}
    with live_server(tmp_path_factory.mktemp("client-feed"), settings) as server:
        server.load(extract())
        yield server


@pytest.fixture(scope="session")
def all_key(live: LiveServer) -> str:
    """Every scope, the private one included."""
    return live.key("client-all", ALL_SCOPES)


@pytest.fixture(scope="session")
def reader_key(live: LiveServer) -> str:
    """Enrollments and petitions, no sensitive keys, no FERPA-protected people."""
    return live.key("client-reader", (READ, PETITIONS_READ))


@pytest.fixture(params=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)
