"""Retention: events older than REGISTRAR_EVENT_RETENTION_DAYS are not served, a cursor from before
them gets 410, and pruning keeps the newest expired event as the horizon's mark (positions have
gaps, so only a kept row can say whether a reader missed something)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ
from registrar.core.clock import utcnow
from registrar.core.settings import Settings
from registrar.events import repository
from registrar.events.models import Event
from registrar.events.record import Change, record
from tests.support.accounts import Accounts
from tests.support.databases import read, write
from tests.support.events import EVENTS, read_all, read_page


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    """The app without its worker: the worker's hourly `tasks.prune` (queued as it starts) prunes
    events with the same retention, and would race this test's own prune for the expired ones."""
    with TestClient(create_app(settings, run_worker=False), base_url="http://testserver") as client:
        yield client


def count(settings: Settings) -> int:
    return read(settings, lambda c: int(c.scalar(select(func.count()).select_from(Event)) or 0))


def test_an_expired_cursor_is_gone(api: TestClient, settings: Settings, accounts: Accounts) -> None:
    reader = accounts.headers([ENROLLMENTS_READ], sub="svc-retention")
    empty, start = read_all(api, reader)
    assert empty == []
    old = utcnow() - dt.timedelta(days=settings.event_retention_days + 10)
    write(settings, record, [Change("enrollment.deleted", "old-1", "sis")], old)
    write(settings, record, [Change("enrollment.deleted", "old-2", "sis")], old)
    write(settings, record, [Change("enrollment.deleted", "new-1", "sis")])

    gone = api.get(EVENTS, headers=reader, params={"after": start})
    assert gone.status_code == 410, gone.text
    assert gone.headers["content-type"].startswith("application/problem+json")
    fresh, cursor = read_all(api, reader)
    assert [e["subject"] for e in fresh] == ["new-1"]
    assert fresh[0]["data"] == {"id": "new-1"}

    cutoff = utcnow() - dt.timedelta(days=settings.event_retention_days)
    assert write(settings, repository.prune, cutoff) == 1  # old-1; old-2 stays as the mark
    assert count(settings) == 2
    assert api.get(EVENTS, headers=reader, params={"after": start}).status_code == 410
    assert [e["subject"] for e in read_all(api, reader)[0]] == ["new-1"]
    page, _next, _r = read_page(api, reader, cursor)
    assert page == []  # a reader past the horizon goes on as before
    assert write(settings, repository.prune, cutoff) == 0
