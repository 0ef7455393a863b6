"""Periodic jobs (tasks/periodic.py): one task per slot however many processes queue it, and the
queue's own chore, pruning, running as such a task in a live app."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from registrar.app import create_app
from registrar.core.clock import utcnow
from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.db.migrate import upgrade
from registrar.events.record import Change, record
from registrar.tasks.jobs import PRUNE
from registrar.tasks.periodic import PeriodicJob, Scheduler
from tests.support.accounts import cli
from tests.support.databases import backend, execute, make_settings, read, write

SLOT_SECONDS = 3600.0
# A slot long past, so the live worker's own schedule (this very hour) cannot be confused with it.
SLOT = 400_000


def _tasks(connection: Connection, resource: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        text("SELECT * FROM tasks WHERE resource = :r ORDER BY request_date"), {"r": resource}
    )
    return [dict(r) for r in rows.mappings().all()]


def test_one_task_per_slot_however_many_processes_queue_it(settings: Settings) -> None:
    """Three processes' schedulers (a Database each, as three processes have) queue the same slot
    at the same instant: one task, one of them saw it new; the next slot is another task."""
    upgrade(settings.database_url)
    job = PeriodicJob("test.periodic", SLOT_SECONDS, {"x": 1})
    now = [SLOT * SLOT_SECONDS + 5.0]
    queued: list[int] = []

    async def main() -> None:
        runtimes = [Runtime.build(settings) for _ in range(3)]
        try:
            schedulers = [
                Scheduler(
                    r.db, settings, [job], queued=lambda i=i: queued.append(i), clock=lambda: now[0]
                )
                for i, r in enumerate(runtimes)
            ]
            waits = await asyncio.gather(*(s.tick() for s in schedulers))
            assert all(abs(w - (SLOT_SECONDS - 5.0)) < 1 for w in waits), waits
            await asyncio.gather(*(s.tick() for s in schedulers))  # the same slot: nothing new
            assert len(queued) == 1, queued
            now[0] += SLOT_SECONDS
            await asyncio.gather(*(s.tick() for s in schedulers))
            assert len(queued) == 2, queued
        finally:
            for r in runtimes:
                await r.close()

    asyncio.run(main())
    tasks = read(settings, _tasks, "test.periodic")
    assert [t["id"] for t in tasks] == [job.task_id(SLOT), job.task_id(SLOT + 1)]
    first = tasks[0]
    assert first["status"] == "accepted" and first["action"] == "RUN"
    assert first["sub"] == "registrar.scheduler"
    payload = first["payload"]
    payload = json.loads(payload) if isinstance(payload, str) else payload
    assert payload == {"slot": "2015-08-19T16:00:00Z", "x": 1}, payload
    assert first["correlation_id"] == "test.periodic@2015-08-19T16:00:00Z"
    assert job.task_id(SLOT) != PeriodicJob("other", SLOT_SECONDS).task_id(SLOT)


def _old(days: float) -> object:
    value = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return value.replace(tzinfo=None).isoformat(sep=" ") if backend() == "sqlite" else value


def test_pruning_runs_as_a_periodic_task(database_url: str) -> None:
    """A live app's worker queues this hour's `tasks.prune` task at start and runs it: the finished
    task past the retention period is gone, the recent one stays, events past theirs are pruned
    (the newest expired one stays as the feed's horizon mark), and the chore is a task that
    `registrar tasks stats` counts."""
    settings = make_settings(database_url, task_retention_days=30, event_retention_days=7)
    upgrade(database_url)
    now = utcnow()
    for subject, days in (("old-1", 8), ("old-2", 8), ("new-1", 6)):
        change = Change("enrollment.deleted", subject, "sis")
        write(settings, record, [change], now - dt.timedelta(days=days))
    insert = (
        "INSERT INTO tasks (id, resource, action, requester, sub, private_scope, status,"
        " request_date, completed_date, worker_data, base_url, called_url, attempts, max_attempts,"
        " run_at) VALUES (:id, 'academic.enrollments', 'PATCH', '{}', 's', false, 'complete',"
        " :done, :done, '{}', 'http://x', 'http://x', 1, 5, :done)"
    )
    execute(settings, text(insert), {"id": "a" * 24, "done": _old(31)})
    execute(settings, text(insert), {"id": "b" * 24, "done": _old(29)})
    job = PeriodicJob(PRUNE, SLOT_SECONDS)
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 20
        while True:
            tasks = read(settings, _tasks, PRUNE)
            if tasks and tasks[-1]["status"] != "accepted":
                break
            assert time.monotonic() < deadline, tasks
            time.sleep(0.05)
    assert [t["id"] for t in tasks] == [job.task_id(job.slot(time.time()))]
    assert tasks[0]["status"] == "complete", tasks[0]
    assert tasks[0]["message"] == (
        "Pruned 1 finished tasks, 0 expired idempotency keys, 0 webhook deliveries and 1 events."
    )
    events = execute(settings, text("SELECT subject FROM events ORDER BY position"))
    assert [r[0] for r in events] == ["old-2", "new-1"]
    assert tasks[0]["path"] is None
    left = {r[0] for r in execute(settings, text("SELECT id FROM tasks"))}
    assert "a" * 24 not in left and "b" * 24 in left
    code, out, err = cli(database_url, "tasks", "stats")
    assert code == 0, err
    assert any(line.split()[:6] == ["│", PRUNE, "│", "0", "│", "0"] for line in out.splitlines()), (
        out
    )
