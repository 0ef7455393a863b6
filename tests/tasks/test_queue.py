"""The queue and the worker, driven by hand: leases, redelivery, retries, errors, shutdown, CLI.

This module's app runs WITHOUT its in-process worker, so each test decides when tasks run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Executable, delete, func, insert, select, text, update

from registrar.auth.scopes import ENROLLMENTS_WRITE as WRITE
from registrar.core.clock import utcnow
from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.enrollments.models import Enrollment, EnrollmentAudit
from registrar.events.models import Event
from registrar.tasks import registry
from registrar.tasks import repository as repo
from registrar.tasks.handlers import (
    ClaimedTask,
    HandlerResult,
    PermanentTaskError,
)
from registrar.tasks.models import IdempotencyKey, Task
from registrar.tasks.repository import prune_keys
from registrar.tasks.service import new_task_id
from registrar.tasks.worker import Worker
from tests.support.accounts import Accounts, cli
from tests.support.databases import make_settings, read
from tests.support.databases import with_runtime as run_db
from tests.support.seeding import audit_count, enrollment_columns, seed_enrollments
from tests.support.seeding import task_row as get_task_row
from tests.support.tasks import patch_body as body

URL = "/api/academic/enrollments/"


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url, run_worker=False)


@pytest.fixture(scope="module")
def ids(api: TestClient, settings: Settings) -> list[str]:
    return seed_enrollments(settings, 10)


@pytest.fixture(scope="module")
def writer(accounts: Accounts) -> dict[str, str]:
    return {**accounts.headers([WRITE], sub="svc-queue-writer"), "Content-Type": "application/json"}


def queue_patch(api: TestClient, eid: str, headers: dict[str, str], payload: Any) -> str:
    r = api.patch(URL + eid, headers=headers, json=payload)
    assert r.status_code == 202, r.text
    return str(r.headers["location"].rsplit("/", 1)[1])


async def insert_task(
    runtime: Runtime,
    resource: str,
    *,
    max_attempts: int = 5,
    status: str = "accepted",
    completed: dt.datetime | None = None,
) -> str:
    task_id = new_task_id()
    await run(
        runtime,
        insert(Task).values(
            id=task_id,
            resource=resource,
            action="POST",
            resource_id=None,
            payload={},
            requester={"sub": "svc-test"},
            sub="svc-test",
            status=status,
            request_date=utcnow(),
            worker_data={},
            base_url="http://example.test",
            called_url="http://example.test/api/x",
            attempts=0,
            max_attempts=max_attempts,
            run_at=utcnow(),
            completed_date=completed,
        ),
    )
    return task_id


async def run(runtime: Runtime, *statements: Executable) -> None:
    """Statements in one transaction, from inside a scenario that holds a runtime."""

    def execute(connection: Connection) -> None:
        for statement in statements:
            connection.execute(statement)

    await runtime.db.write(execute)


async def expire_lease(runtime: Runtime, task_id: str) -> None:
    await run(
        runtime,
        update(Task)
        .where(Task.id == task_id)
        .values(locked_until=utcnow() - dt.timedelta(seconds=1)),
    )


def test_accepted_task_shows_nulls_and_retry_after(
    api: TestClient, writer: dict[str, str], ids: list[str]
) -> None:
    task_id = queue_patch(api, ids[0], writer, body("2020-03-05T17:53:46Z"))
    r = api.get(f"/api/tasks/{task_id}", headers=writer)
    assert r.status_code == 200
    assert int(r.headers["retry-after"]) >= 1
    task = r.json()
    assert task["status"] == "accepted"
    assert task["path"] is None and task["message"] is None and task["completed_date"] is None


@pytest.mark.parametrize("stale_first", [True, False])
def test_a_task_delivered_twice_changes_the_record_once(
    api: TestClient, settings: Settings, writer: dict[str, str], ids: list[str], stale_first: bool
) -> None:
    eid = ids[1] if stale_first else ids[2]
    task_id = queue_patch(api, eid, writer, body(None, "2020-05-05T05:05:05Z"))

    async def scenario(runtime: Runtime) -> tuple[str, str]:
        a, b = (
            Worker(runtime, handlers=HANDLERS, worker_id="worker-a"),
            Worker(runtime, handlers=HANDLERS, worker_id="worker-b"),
        )
        [stale] = [t for t in await a.claim(50) if t.id == task_id]
        await expire_lease(runtime, task_id)  # worker A hangs past its lease...
        [fresh] = [t for t in await b.claim(50) if t.id == task_id]  # ...B reclaims the task
        assert fresh.attempts == 2
        if stale_first:  # A wakes up and runs its copy: its writes must roll back
            return await a.run_one(stale), await b.run_one(fresh)
        outcome_b = await b.run_one(fresh)
        return await a.run_one(stale), outcome_b

    outcome_a, outcome_b = run_db(settings, scenario)
    assert (outcome_a, outcome_b) == ("lost", "complete")
    assert audit_count(settings, enrollment_id=eid) == 1
    task = api.get(f"/api/tasks/{task_id}", headers=writer).json()
    assert task["status"] == "complete"
    assert task["worker_data"] == {"worker": "worker-b", "attempts": 2}

    # Redelivered even after completing (say, a restored backup): the audit row stops a rerun.
    async def redeliver(runtime: Runtime) -> str:
        await run(
            runtime,
            update(Task)
            .where(Task.id == task_id)
            .values(status="accepted", completed_date=None, locked_by=None, locked_until=None),
            update(Enrollment).where(Enrollment.id == eid).values(course_opt_out_date=None),
        )
        c = Worker(runtime, handlers=HANDLERS, worker_id="worker-c")
        [again] = [t for t in await c.claim(50) if t.id == task_id]
        return await c.run_one(again)

    assert run_db(settings, redeliver) == "complete"
    assert audit_count(settings, enrollment_id=eid) == 1
    assert enrollment_columns(settings, eid) == (None, None)  # not applied a second time


def _flaky(connection: Any, task: ClaimedTask) -> HandlerResult:
    if task.attempts < 3:  # by attempt: a handler may run more than once per attempt
        raise ConnectionError("upstream hiccup")
    return HandlerResult("http://example.test/api/done", "done")


def _broken(connection: Any, task: ClaimedTask) -> HandlerResult:
    raise PermanentTaskError(["netid is unknown."])


def _always_fails(connection: Any, task: ClaimedTask) -> HandlerResult:
    raise RuntimeError("still down")


async def drain(worker: Worker, task_id: str, rounds: int = 10) -> list[str]:
    outcomes = []
    for _ in range(rounds):
        claimed = [t for t in await worker.claim(50) if t.id == task_id]
        for t in claimed:
            outcomes.append(await worker.run_one(t))
        if outcomes and outcomes[-1] in ("complete", "error"):
            break
        await asyncio.sleep(0.05)
    return outcomes


def test_transient_failures_retry_with_backoff_then_complete(
    api: TestClient, settings: Settings
) -> None:
    async def scenario(runtime: Runtime) -> tuple[list[str], str]:
        task_id = await insert_task(runtime, "test.flaky")
        worker = Worker(runtime, handlers=HANDLERS, retry_base_seconds=0.01)
        return await drain(worker, task_id), task_id

    outcomes, task_id = run_db(settings, scenario)
    assert outcomes == ["retry", "retry", "complete"]
    row = get_task_row(settings, task_id)
    assert row is not None and row.status == "complete" and row.attempts == 3
    assert row.path == "http://example.test/api/done"


def test_permanent_error_ends_with_the_called_url(api: TestClient, settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> tuple[list[str], str]:
        task_id = await insert_task(runtime, "test.broken")
        return await drain(Worker(runtime, handlers=HANDLERS), task_id), task_id

    outcomes, task_id = run_db(settings, scenario)
    assert outcomes == ["error"]
    row = get_task_row(settings, task_id)
    assert row is not None and row.status == "error"
    assert row.path == "http://example.test/api/x" and row.message == "['netid is unknown.']"


def test_exhausted_attempts_end_in_error(api: TestClient, settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> tuple[list[str], str]:
        task_id = await insert_task(runtime, "test.down", max_attempts=2)
        return await drain(
            Worker(runtime, handlers=HANDLERS, retry_base_seconds=0.01), task_id
        ), task_id

    outcomes, task_id = run_db(settings, scenario)
    assert outcomes == ["retry", "error"]
    row = get_task_row(settings, task_id)
    assert row is not None and row.status == "error" and "2 attempts" in (row.message or "")
    assert row.last_error == "RuntimeError: still down"


def test_enrollment_gone_before_the_worker_runs_is_an_error(
    api: TestClient, settings: Settings, writer: dict[str, str], ids: list[str]
) -> None:
    eid = ids[3]
    task_id = queue_patch(api, eid, writer, body("2020-03-05T17:53:46Z"))

    async def scenario(runtime: Runtime) -> list[str]:
        await run(runtime, delete(Enrollment).where(Enrollment.id == eid))
        return await drain(Worker(runtime, handlers=HANDLERS), task_id)

    assert run_db(settings, scenario) == ["error"]
    task = api.get(f"/api/tasks/{task_id}", headers=writer).json()
    assert task["status"] == "error"
    assert task["path"] == f"http://testserver{URL}{eid}"
    assert task["message"] == f"['Enrollment {eid} does not exist.']"


def test_cli_stats_and_retry(api: TestClient, settings: Settings, database_url: str) -> None:
    async def make(runtime: Runtime) -> tuple[str, str]:
        failed = await insert_task(runtime, "test.cli", status="error", completed=utcnow())
        done = await insert_task(runtime, "test.cli", status="complete", completed=utcnow())
        return failed, done

    failed, done = run_db(settings, make)
    code, out, _err = cli(database_url, "tasks", "stats")
    assert code == 0 and "queued" in out and "test.cli" in out
    code, out, _err = cli(database_url, "tasks", "retry", failed)
    assert code == 0, out
    row = get_task_row(settings, failed)
    assert row is not None and row.status == "accepted" and row.attempts == 0
    code, _out, err = cli(database_url, "tasks", "retry", done)
    assert code == 1 and "it is complete, not error" in " ".join(err.split())
    code, _out, err = cli(database_url, "tasks", "retry", "f" * 24)
    assert code == 1 and "no such task" in " ".join(err.split())


def test_prune_removes_old_finished_tasks_and_keys(api: TestClient, settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> tuple[str, str, int, int]:
        old = await insert_task(
            runtime, "test.old", status="complete", completed=utcnow() - dt.timedelta(days=40)
        )
        recent = await insert_task(runtime, "test.old", status="complete", completed=utcnow())
        await run(
            runtime,
            insert(IdempotencyKey).values(
                sub="s",
                key="old",
                request_hash="h",
                task_id=old,
                created_at=utcnow() - dt.timedelta(hours=25),
            ),
        )
        tasks = await runtime.db.write(repo.prune_finished, retention_days=30)
        keys = await runtime.db.write(prune_keys)
        return old, recent, tasks, keys

    old, recent, tasks, keys = run_db(settings, scenario)
    assert tasks >= 1 and keys == 1
    assert get_task_row(settings, old) is None and get_task_row(settings, recent) is not None


def _slow(connection: Connection, task: ClaimedTask) -> HandlerResult:
    # Longer than the test's grace period. On PostgreSQL a server-side sleep, so the event loop
    # (where run_sync runs handlers) stays free; on SQLite the writer thread sleeps.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_sleep(1)"))
    else:
        time.sleep(1)
    return HandlerResult("http://example.test/api/slow", "slow")


# The service's handlers and this module's own, for the workers these tests run.
HANDLERS = {
    **registry.HANDLERS,
    ("test.flaky", "POST"): _flaky,
    ("test.broken", "POST"): _broken,
    ("test.down", "POST"): _always_fails,
    ("test.slow", "POST"): _slow,
}


def test_stop_releases_in_flight_tasks(api: TestClient, settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> str:
        task_id = await insert_task(runtime, "test.slow")
        # Nothing else of the worker's running: the scheduler's first slot task wakes the claim
        # loop at start, whose next claim (like the deliverer's) then waits on SQLite's writer
        # behind the slow batch, and stop() with it, past the grace period (seen once in a full
        # run: the slow task completed).
        worker = Worker(
            runtime,
            handlers=HANDLERS,
            shutdown_grace_seconds=0.2,
            schedule=[],
            deliver_webhooks=False,
        )
        await worker.start()
        for _ in range(200):
            if task_id in worker._inflight:
                break
            await asyncio.sleep(0.01)
        assert task_id in worker._inflight
        await worker.stop()
        return task_id

    task_id = run_db(settings, scenario)
    row = get_task_row(settings, task_id)
    assert row is not None
    assert (row.status, row.locked_by, row.attempts) == ("accepted", None, 0)
    # Leave nothing for later tests to trip on.
    run_db(settings, lambda rt: _delete_task(rt, task_id))


async def _delete_task(runtime: Runtime, task_id: str) -> None:
    await run(runtime, delete(Task).where(Task.id == task_id))


def test_heartbeat_extends_only_own_leases(api: TestClient, settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> tuple[int, int]:
        task_id = await insert_task(runtime, "test.hb")
        await run(
            runtime,
            update(Task)
            .where(Task.id == task_id)
            .values(locked_by="me", locked_until=utcnow() + dt.timedelta(seconds=1)),
        )
        mine = await runtime.db.write(repo.heartbeat, [task_id], worker_id="me", lease_seconds=60)
        theirs = await runtime.db.write(
            repo.heartbeat, [task_id], worker_id="other", lease_seconds=60
        )
        return mine, theirs

    assert run_db(settings, scenario) == (1, 0)


def test_an_older_request_run_late_does_not_overwrite_a_newer_one(
    api: TestClient, settings: Settings, writer: dict[str, str], ids: list[str]
) -> None:
    eid = ids[4]
    older = queue_patch(api, eid, writer, body("2020-01-01T00:00:00Z"))
    newer = queue_patch(api, eid, writer, body(None, "2020-02-02T00:00:00Z"))

    async def scenario(runtime: Runtime) -> tuple[str, str]:
        worker = Worker(runtime, handlers=HANDLERS)
        claimed = {t.id: t for t in await worker.claim(50)}
        # Out of order, as a retry or a reclaimed lease can make it: the newer one first.
        return await worker.run_one(claimed[newer]), await worker.run_one(claimed[older])

    assert run_db(settings, scenario) == ("complete", "complete")
    assert enrollment_columns(settings, eid) == (None, dt.datetime(2020, 2, 2, tzinfo=dt.UTC))
    assert audit_count(settings, enrollment_id=eid) == 2


def test_a_failing_task_neither_fails_nor_delays_its_neighbours(
    api: TestClient, settings: Settings, writer: dict[str, str]
) -> None:
    """One batch: three good PATCHes, a PATCH whose enrollment is gone (a permanent error the
    batch handler returns), a task whose handler raises a permanent error and one whose handler
    raises a transient one. The good ones complete in that same run, each applied once."""
    eids = seed_enrollments(settings, 4)
    good = [queue_patch(api, eid, writer, body("2020-03-05T17:53:46Z")) for eid in eids[:3]]
    gone = queue_patch(api, eids[3], writer, body("2020-03-05T17:53:46Z"))

    async def scenario(runtime: Runtime) -> tuple[dict[str, str], str, str]:
        await run(runtime, delete(Enrollment).where(Enrollment.id == eids[3]))
        broken = await insert_task(runtime, "test.broken")
        flaky = await insert_task(runtime, "test.flaky")
        worker = Worker(runtime, handlers=HANDLERS, retry_base_seconds=60)
        mine = {*good, gone, broken, flaky}
        batch = [t for t in await worker.claim(50) if t.id in mine]
        assert len(batch) == len(mine)
        outcomes = await worker.run_batch(batch)
        return {k: str(v) for k, v in outcomes.items()}, broken, flaky

    outcomes, broken, flaky = run_db(settings, scenario)
    assert outcomes == {
        **{task_id: "complete" for task_id in good},
        gone: "error",
        broken: "error",
        flaky: "retry",
    }
    for task_id, eid in zip(good, eids, strict=False):
        task = api.get(f"/api/tasks/{task_id}", headers=writer).json()
        assert task["status"] == "complete" and task["path"] == f"http://testserver{URL}{eid}"
        assert enrollment_columns(settings, eid) == (
            dt.datetime(2020, 3, 5, 17, 53, 46, tzinfo=dt.UTC),
            None,
        )
    assert audit_count(settings, task_ids=good) == 3
    assert audit_count(settings, task_ids=[gone]) == 0
    task = api.get(f"/api/tasks/{gone}", headers=writer).json()
    assert task["status"] == "error"
    assert task["message"] == f"['Enrollment {eids[3]} does not exist.']"
    row = get_task_row(settings, broken)
    assert (row.status, row.message) == ("error", "['netid is unknown.']")
    row = get_task_row(settings, flaky)
    assert (row.status, row.locked_by, row.attempts) == ("accepted", None, 1)
    assert row.last_error == "ConnectionError: upstream hiccup"
    run_db(settings, lambda rt: _delete_task(rt, flaky))


def test_in_one_batch_the_newest_request_wins_and_each_is_audited_in_order(
    api: TestClient, settings: Settings, writer: dict[str, str]
) -> None:
    """Three PATCHes of one enrollment in one batch, handed over newest first: applied once each,
    in request order (each audit row's `before` the previous one's `after`), the newest shown."""
    [eid] = seed_enrollments(settings, 1)
    values = ["2020-01-01T00:00:00Z", "2020-02-02T00:00:00Z", "2020-03-03T00:00:00Z"]
    sent = [queue_patch(api, eid, writer, body(v)) for v in values]

    async def scenario(runtime: Runtime) -> dict[str, str]:
        worker = Worker(runtime, handlers=HANDLERS)
        claimed = {t.id: t for t in await worker.claim(50) if t.id in sent}
        outcomes = await worker.run_batch([claimed[t] for t in reversed(sent)])
        return {k: str(v) for k, v in outcomes.items()}

    assert run_db(settings, scenario) == {t: "complete" for t in sent}
    assert enrollment_columns(settings, eid) == (dt.datetime(2020, 3, 3, tzinfo=dt.UTC), None)

    def audit(connection: Connection) -> list[Any]:
        return list(
            connection.execute(
                select(EnrollmentAudit.task_id, EnrollmentAudit.before, EnrollmentAudit.after)
                .where(EnrollmentAudit.enrollment_id == eid)
                .order_by(EnrollmentAudit.pk)
            )
        )

    rows = read(settings, audit)
    assert [r.task_id for r in rows] == sent
    previous: Any = {"course_assessment": None}
    for row, value in zip(rows, values, strict=True):
        assert row.before == previous
        assert row.after == {"course_assessment": {"submit_date": value, "opt_out_date": None}}
        previous = row.after


def test_a_batch_records_a_change_only_for_a_value_that_really_changed(
    api: TestClient, settings: Settings, writer: dict[str, str]
) -> None:
    """The change record of PATCH batches: `enrollment.updated` (with the enrollment's netid) for
    a task that changed the value; none for the same value again, for a request superseded by a
    newer one already applied, or for an enrollment that is gone; `task.completed` for every
    finished task, to its requester."""
    a, b, c, d = seed_enrollments(settings, 4)
    older_c = queue_patch(api, c, writer, body("2018-01-01T00:00:00Z"))
    newer_c = queue_patch(api, c, writer, body("2018-02-02T00:00:00Z"))
    first_b = queue_patch(api, b, writer, body("2018-03-03T00:00:00Z"))
    again_b = queue_patch(api, b, writer, body("2018-03-03T00:00:00Z"))
    change_a = queue_patch(api, a, writer, body("2018-04-04T00:00:00Z"))
    gone_d = queue_patch(api, d, writer, body("2018-05-05T00:00:00Z"))
    second = [change_a, again_b, older_c, gone_d]

    async def scenario(runtime: Runtime) -> tuple[int, dict[str, str]]:
        await run(runtime, delete(Enrollment).where(Enrollment.id == d))
        worker = Worker(runtime, handlers=HANDLERS)
        claimed = {t.id: t for t in await worker.claim(50)}
        await worker.run_batch([claimed[newer_c], claimed[first_b]])
        mark = await runtime.db.read(lambda c: c.scalar(select(func.max(Event.position))))
        outcomes = await worker.run_batch([claimed[t] for t in second])
        return mark or 0, {k: str(v) for k, v in outcomes.items()}

    mark, outcomes = run_db(settings, scenario)
    assert outcomes == {change_a: "complete", again_b: "complete", older_c: "complete"} | {
        gone_d: "error"
    }
    assert enrollment_columns(settings, c)[0] == dt.datetime(2018, 2, 2, tzinfo=dt.UTC)

    def recorded(connection: Connection) -> list[Any]:
        query = select(
            Event.type, Event.subject, Event.origin, Event.netid, Event.changed, Event.requester
        )
        return list(connection.execute(query.where(Event.position > mark)))

    rows = read(settings, recorded)
    netid_a = read(settings, lambda c: c.scalar(select(Enrollment.netid).where(Enrollment.id == a)))
    assert [r for r in rows if r.type == "enrollment.updated"] == [
        ("enrollment.updated", a, "api", netid_a, ["course_assessment"], None)
    ]
    completed = [r for r in rows if r.type == "task.completed"]
    assert sorted(r.subject for r in completed) == sorted(second)
    assert {r.requester for r in completed} == {"svc-queue-writer"}
