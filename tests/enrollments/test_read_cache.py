"""The read cache (db/read_cache.py): repeated lookups skip the database, and any commit from any
connection is seen by the very next request, FERPA changes included."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE
from registrar.core.settings import Settings
from tests.support.accounts import Accounts
from tests.support.databases import backend

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="the read cache is SQLite's")

URL = "/api/academic/enrollments"
SAMPLE = "AAAS.010.01-202001-U-10191-f001nkx-student"
CONFIDENTIAL_ONE = "AAAS.010.01-202001-U-10191-f00conf-student"


@pytest.fixture(scope="module")
def reader(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE], sub="cache-reader")


@pytest.fixture(scope="module")
def private(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([ENROLLMENTS_READ, PEOPLE_PRIVATE], sub="cache-private")


@contextmanager
def other_connection(settings: Settings) -> Iterator[sqlite3.Connection]:
    """A connection of its own, as another process (a load, a worker) would have."""
    connection = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    try:
        yield connection
        connection.commit()
    finally:
        connection.close()


def cache(api: TestClient) -> Any:
    found = api.app.state.runtime.db.read_cache  # type: ignore[attr-defined]
    assert found is not None
    return found


def test_a_repeated_lookup_is_served_from_memory(
    api: TestClient, enrollments: Any, reader: Any
) -> None:
    first = api.get(f"{URL}/{SAMPLE}", headers=reader)
    assert first.status_code == 200
    hits = cache(api).hits
    again = api.get(f"{URL}/{SAMPLE}", headers=reader)
    assert again.json() == first.json()
    assert cache(api).hits == hits + 1
    figures = api.get("/metrics").text
    assert 'registrar_read_cache_lookups{result="hit"}' in figures


def test_a_commit_elsewhere_is_seen_by_the_next_request(
    api: TestClient, settings: Settings, enrollments: Any, reader: Any
) -> None:
    before = api.get(f"{URL}/{SAMPLE}", headers=reader).json()["final_grade"]
    api.get(f"{URL}/{SAMPLE}", headers=reader)  # certainly cached now
    with other_connection(settings) as other:
        other.execute("UPDATE enrollments SET final_grade = 'Z' WHERE id = ?", (SAMPLE,))
    assert api.get(f"{URL}/{SAMPLE}", headers=reader).json()["final_grade"] == "Z"
    with other_connection(settings) as other:
        other.execute("UPDATE enrollments SET final_grade = ? WHERE id = ?", (before, SAMPLE))
    assert api.get(f"{URL}/{SAMPLE}", headers=reader).json()["final_grade"] == before


def test_a_person_made_confidential_is_gone_at_once(
    api: TestClient, settings: Settings, enrollments: Any, reader: Any, private: Any
) -> None:
    assert api.get(f"{URL}/{SAMPLE}", headers=reader).status_code == 200
    assert api.get(f"{URL}/{SAMPLE}", headers=reader).status_code == 200  # from the cache
    try:
        with other_connection(settings) as other:
            other.execute("UPDATE people SET confidential = 1 WHERE netid = 'f001nkx'")
        assert api.get(f"{URL}/{SAMPLE}", headers=reader).status_code == 404
        assert api.get(f"{URL}/{SAMPLE}", headers=private).status_code == 200
    finally:
        with other_connection(settings) as other:
            other.execute("UPDATE people SET confidential = 0 WHERE netid = 'f001nkx'")
    assert api.get(f"{URL}/{SAMPLE}", headers=reader).status_code == 200


def test_what_one_view_cached_is_not_served_to_another(
    api: TestClient, enrollments: Any, reader: Any, private: Any
) -> None:
    # The private scope's view fills the cache with a confidential person's enrollment...
    for _ in range(2):
        assert api.get(f"{URL}/{CONFIDENTIAL_ONE}", headers=private).status_code == 200
    # ...which stays absent for everyone else, and "not found" is never remembered.
    entries = len(cache(api))
    for _ in range(2):
        assert api.get(f"{URL}/{CONFIDENTIAL_ONE}", headers=reader).status_code == 404
        assert api.get(f"{URL}/NOPE-f001nkx-student", headers=reader).status_code == 404
    assert len(cache(api)) == entries


def test_sensitive_keys_follow_the_token_not_the_cache(
    api: TestClient, accounts: Accounts, enrollments: Any, reader: Any
) -> None:
    plain = accounts.headers([ENROLLMENTS_READ], sub="cache-plain")
    assert "final_grade" in api.get(f"{URL}/{SAMPLE}", headers=reader).json()
    assert "final_grade" not in api.get(f"{URL}/{SAMPLE}", headers=plain).json()
