"""A full disk: writes answer 503 (nothing accepted that could be lost), reads go on, and /health
says so (issue 9: it stayed 200 while every write was refused).

SQLite's disk fills for real: `PRAGMA max_page_count` on the app's own writer connection caps the
file at its size, and SQLite answers SQLITE_FULL as it does for a full disk. PostgreSQL's is the
error a full disk gives (SQLSTATE 53100, disk_full), raised by a trigger on the queue's table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_WRITE
from registrar.core.settings import Settings
from registrar.db import write_health
from tests.support.accounts import Accounts
from tests.support.databases import backend, execute, make_settings
from tests.support.seeding import seed_known_enrollments
from tests.support.tasks import JSON, patch_body

ENROLLMENTS = "/api/academic/enrollments"

FULL_DISK_TRIGGER = """
CREATE OR REPLACE FUNCTION registrar_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'could not extend file "base/16384/16385": No space left on device'
    USING ERRCODE = 'disk_full';
END $$
"""
FULL_DISK_ON_TASKS = """
CREATE TRIGGER registrar_test_disk_full BEFORE INSERT ON tasks
  FOR EACH ROW EXECUTE FUNCTION registrar_test_disk_full()
"""


@pytest.fixture(scope="module")
def app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(settings.database_url))) as client:
        yield client


def _fill_disk(app: TestClient, settings: Settings, full: bool) -> None:
    if backend() == "postgresql":
        if full:
            execute(settings, text(FULL_DISK_TRIGGER))
            execute(settings, text(FULL_DISK_ON_TASKS))
        else:
            execute(settings, text("DROP TRIGGER registrar_test_disk_full ON tasks"))
        return

    def cap(connection: Connection) -> Any:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar() if full else 1 << 30
        return connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}").scalar()

    runtime = app.app.state.runtime  # type: ignore[attr-defined]
    assert app.portal is not None
    app.portal.call(runtime.db.write, cap)


def test_full_disk_writes_503_reads_go_on_and_health_says_degraded(
    app: TestClient,
    accounts: Accounts,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(write_health, "FORGET_AFTER_SECONDS", 2.0)
    rows = seed_known_enrollments(settings)
    target = f"{ENROLLMENTS}/{next(e['id'] for e in rows if e['netid'] == 'f001nkx')}"
    headers = accounts.headers([ENROLLMENTS_READ, ENROLLMENTS_WRITE], sub="svc-disk")
    body = patch_body("2020-03-05T17:53:46Z")
    assert app.get("/health").json()["status"] == "ok"

    _fill_disk(app, settings, full=True)
    try:
        for _ in range(2000):
            refused = app.patch(target, headers={**headers, **JSON}, json=body)
            if refused.status_code != 202:
                break
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/storage-unavailable")
        assert "disk full" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) >= 1

        # The contract fixes 200 while the database answers: the body says what fails ...
        health = app.get("/health")
        assert health.status_code == 200
        report = health.json()
        assert report["status"] == "degraded" and report["reads"] == "ok"
        assert report["writes"].startswith("failing since 20") and report["reason"] == "disk full"
        # ... and a load balancer or monitor that should act on it asks for writes: 503.
        strict = app.get("/health", params={"require": "writes"})
        assert strict.status_code == 503
        assert int(strict.headers["Retry-After"]) >= 1
        assert strict.json() == report
        assert "registrar_database_writes_failing 1.0" in app.get("/metrics").text
        assert app.get(target, headers=headers).status_code == 200
    finally:
        _fill_disk(app, settings, full=False)

    accepted = app.patch(target, headers={**headers, **JSON}, json=body)
    assert accepted.status_code == 202
    # Back to ok once no write has been refused for the forget interval.
    deadline = time.monotonic() + 10
    while (health := app.get("/health", params={"require": "writes"})).status_code != 200:
        assert time.monotonic() < deadline, health.text
        time.sleep(0.1)
    assert health.json()["status"] == "ok"
    assert "registrar_database_writes_failing 0.0" in app.get("/metrics").text
