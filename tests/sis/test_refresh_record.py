"""The record of scheduled refreshes (sis/repository.py begin_refresh), decided against the
database as the workers decide it: which attempt a slot's task starts, resumes, or skips."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from registrar.core.clock import utcnow
from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.db.migrate import upgrade
from registrar.sis import refresh as refreshes
from registrar.sis import repository as repo
from registrar.tasks import repository as tasks_repo
from registrar.tasks.periodic import PeriodicJob, periodic_task
from tests.support.databases import read, with_runtime, write

JOB = PeriodicJob("sis.refresh", 2.0)
FILE: dict[str, Any] = {
    "extract": "/data/extract.jsonl",
    "size": 1234,
    "mtime_ns": 1_700_000_000_000_000_000,
}


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


def test_a_database_timeout_during_the_load_is_retried_not_blamed_on_the_extract(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TimeoutError and ConnectionError are OSErrors: the load's own connection timing out or
    refused must not end the task `error` as "cannot read the extract" and mark the file failed
    (not tried again until it changes); it is retried as any database failure is."""
    upgrade(settings.database_url)
    write(settings, lambda c: c.execute(text("DELETE FROM sis_refreshes")))
    path = tmp_path / "extract.jsonl"
    path.write_text("{}\n")

    def unreachable(_settings: Settings) -> Any:
        raise TimeoutError("connecting to the database timed out")

    monkeypatch.setattr(refreshes, "create_database", unreachable)
    configured = settings.model_copy(update={"sis_extract": path})
    task_id = _task(settings, 900_101)

    async def run(runtime: Runtime) -> None:
        await refreshes.refresh(
            runtime.db, configured, task_id=task_id, attempt=1, worker_id="w-test"
        )

    with pytest.raises(TimeoutError):
        with_runtime(settings, run)
    newest = read(settings, repo.latest_refresh)
    assert newest is not None
    assert newest.status == repo.RUNNING, dict(newest._mapping)
