"""Test harness: every test talks HTTP to the real app over a real database (tests/support/).

SQLite by default; REGISTRAR_TEST_POSTGRES_URL runs the same suite on PostgreSQL, each test module
in a database of its own, created and dropped around it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.auth.scopes import ALL_SCOPES
from registrar.core.settings import Settings
from tests.support.accounts import Accounts
from tests.support.databases import make_settings, new_database_url


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = new_database_url(tmp_path_factory.mktemp("db"))
    yield url
    drop()


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    """The app, lifespan and in-process worker included, over the module's database."""
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def accounts(database_url: str, api: TestClient) -> Accounts:
    return Accounts(database_url, api)


@pytest.fixture(scope="module")
def all_scopes(accounts: Accounts) -> dict[str, str]:
    return accounts.headers(ALL_SCOPES, sub="svc-all")
