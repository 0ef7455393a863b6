"""Waiting when the worker is another process: nothing in the API process finishes the task, so
the wake-up comes from the database (PostgreSQL: LISTEN/NOTIFY; SQLite: the WAL-index header)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_WRITE
from registrar.core.settings import Settings
from tests.support.accounts import Accounts
from tests.support.seeding import seed_enrollments
from tests.support.servers import Proc
from tests.support.tasks import JSON, patch_body


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    """The API alone: no worker in this process."""
    with TestClient(create_app(settings, run_worker=False), base_url="http://testserver") as c:
        yield c


def test_waits_time_out_then_a_worker_process_wakes_them(
    api: TestClient, settings: Settings, accounts: Accounts, database_url: str
) -> None:
    ids = seed_enrollments(settings, 3)
    writer = accounts.headers([ENROLLMENTS_WRITE], sub="svc-far-waiter")

    def patch(eid: str, prefer: str) -> object:
        return api.patch(
            f"/api/academic/enrollments/{eid}",
            headers={**writer, **JSON, "Prefer": prefer},
            json=patch_body("2020-03-05T17:53:46Z"),
        )

    # No worker: the preference is not met in time, and the usual 202 comes after the wait.
    started = time.monotonic()
    r = patch(ids[0], "wait=1")
    took = time.monotonic() - started
    assert r.status_code == 202 and 0.9 < took < 5, took  # type: ignore[attr-defined]
    location = r.headers["location"]  # type: ignore[attr-defined]
    started = time.monotonic()
    held = api.get(location, headers=writer, params={"wait": "1"})
    assert held.json()["status"] == "accepted" and time.monotonic() - started > 0.9

    worker = Proc(database_url, "worker")
    try:
        started = time.monotonic()
        done = api.get(location, headers=writer, params={"wait": "30"})
        assert done.json()["status"] == "complete", done.text
        assert time.monotonic() - started < 20
        started = time.monotonic()
        r = patch(ids[1], "wait=30")
        assert r.status_code == 200 and r.json()["status"] == "complete"  # type: ignore[attr-defined]
        assert time.monotonic() - started < 5
    finally:
        assert worker.terminate(uvicorn=False) == 0
