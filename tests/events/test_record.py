"""The change record: rows written in the caller's transaction, in commit order, or not at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import create_async_engine

from registrar.core.settings import Settings
from registrar.db.engine import async_url
from registrar.events.models import Event
from registrar.events.record import Change, record
from tests.support.databases import backend, read, write


def _positions(connection: Connection, subject_prefix: str) -> list[tuple[int, str, str]]:
    rows = connection.execute(
        select(Event.position, Event.subject, Event.type)
        .where(Event.subject.startswith(subject_prefix))
        .order_by(Event.position)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_batch_is_recorded_in_order_with_its_fields(api: TestClient, settings: Settings) -> None:
    changes = [
        Change("enrollment.created", "rec-a", "sis", netid="f00a"),
        Change("enrollment.updated", "rec-b", "api", netid="f00b", changed=("course_assessment",)),
        Change("task.completed", "rec-c", "api", requester="svc"),
    ]
    write(settings, record, changes)

    def rows(connection: Connection) -> list[Any]:
        return list(
            connection.execute(
                select(Event.__table__)
                .where(Event.subject.startswith("rec-"))
                .order_by(Event.position)
            ).all()
        )

    got = read(settings, rows)
    assert [r.subject for r in got] == ["rec-a", "rec-b", "rec-c"]
    assert got[0].origin == "sis" and got[0].netid == "f00a"
    assert got[1].changed == ["course_assessment"]
    assert got[2].requester == "svc" and got[2].netid is None
    assert got[0].position < got[1].position < got[2].position


def test_a_rolled_back_transaction_records_nothing(api: TestClient, settings: Settings) -> None:
    def fail(connection: Connection) -> None:
        record(connection, [Change("enrollment.deleted", "rb-x", "sis")])
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        write(settings, fail)
    assert read(settings, _positions, "rb-") == []


@pytest.mark.skipif(backend() != "postgresql", reason="the commit-order lock is PostgreSQL's")
def test_positions_follow_commit_order_on_postgresql(api: TestClient, settings: Settings) -> None:
    """A transaction that records first but commits last must still get the lower position, and
    one that records meanwhile waits for it: otherwise a reader that has passed the later one's
    position would skip the earlier for ever."""

    async def scenario() -> None:
        engine = create_async_engine(async_url(settings.database_url))
        try:
            async with engine.connect() as a:
                await a.run_sync(record, [Change("enrollment.created", "co-first", "sis")])

                async def second() -> None:
                    async with engine.begin() as b:
                        await b.run_sync(record, [Change("enrollment.created", "co-second", "sis")])

                waiting = asyncio.create_task(second())
                await asyncio.sleep(0.5)
                # Not a timing claim: the second cannot finish before the first commits.
                assert not waiting.done()
                await a.commit()
                await asyncio.wait_for(waiting, 10)
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    positions = read(settings, _positions, "co-")
    assert [s for _, s, _ in positions] == ["co-first", "co-second"]
