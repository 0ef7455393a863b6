"""The record of scheduled refreshes (sis/repository.py begin_refresh), decided against the
database as the workers decide it: which attempt a slot's task starts, resumes, or skips."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, text

from registrar.core.clock import utcnow
from registrar.core.settings import Settings
from registrar.db.migrate import upgrade
from registrar.sis import repository as repo
from registrar.tasks import repository as tasks_repo
from registrar.tasks.periodic import PeriodicJob, periodic_task
from tests.support.databases import write

JOB = PeriodicJob("sis.refresh", 2.0)
FILE = {"extract": "/data/extract.jsonl", "size": 1234, "mtime_ns": 1_700_000_000_000_000_000}


def _task(settings: Settings, slot: int) -> str:
    row = periodic_task(settings, JOB, slot)
    write(settings, tasks_repo.insert_periodic, [row])
    return str(row["id"])


def _begin(settings: Settings, task_id: str) -> tuple[str, Any]:
    def run(connection: Connection) -> tuple[str, Any]:
        return repo.begin_refresh(connection, task_id=task_id, attempt=1, now=utcnow(), **FILE)

    return write(settings, run)


def test_a_refresh_whose_task_gave_up_is_tried_again_for_the_same_file(
    settings: Settings,
) -> None:
    """A refresh that never finished (its task ran out of attempts: the database away, workers
    killed) is not a verdict on the file, as a bad extract is: the next slot loads the same file
    again instead of skipping it as "unchanged" until the file changes."""
    upgrade(settings.database_url)
    first = _task(settings, 900_001)
    decision, row = _begin(settings, first)
    assert decision == "start"
    # Its attempts spent on failures that pass, the task ends `error` with the attempt running.
    write(
        settings,
        lambda c: c.execute(
            text("UPDATE tasks SET status = 'error', completed_date = :t WHERE id = :i"),
            {"t": utcnow() - dt.timedelta(seconds=1), "i": first},
        ),
    )
    second = _task(settings, 900_002)
    decision, row = _begin(settings, second)
    assert decision == "start", (decision, dict(row._mapping))
    assert row.task_id == second and row.status == repo.RUNNING
