"""Every statement on the task queue: queue new tasks (and their Idempotency-Keys), claim with a
lease, finish under the lease, retry, release, heartbeat, prune, read a task and the figures.

Each is plain code over a Connection, for `Database.write` (or `read`): the worker runs a claim,
or a whole batch of tasks and their finishes, in one hop. Every statement that changes a claimed
task is guarded by `locked_by = <this worker>`: a worker whose lease expired and whose task
another worker reclaimed updates nothing, so it cannot finish a task twice (the caller rolls its
handler's writes back when the guard matches no row).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from registrar.core.clock import utcnow
from registrar.db.base import UTCDateTime
from registrar.db.database import database_now
from registrar.db.notices import TASKS_FINISHED_CHANNEL
from registrar.tasks.handlers import ClaimedTask
from registrar.tasks.idempotency import KEY_TTL, IdempotencyClaim, KeyReused
from registrar.tasks.models import IdempotencyKey, Task, TaskStatus

# Core statements on the Table, not the mapped class: these run once per task, and the ORM's
# bulk-DML layer would cost more than the statement.
TASKS = cast(Table, Task.__table__)
T = TASKS.c
KEYS = cast(Table, IdempotencyKey.__table__)
# PostgreSQL: every new task is announced here when its transaction commits (workers LISTEN).
NOTIFY_CHANNEL = "registrar_tasks"


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def claim(
    connection: Connection,
    *,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    resources: Sequence[str],
) -> list[ClaimedTask]:
    """Lease up to `limit` due tasks, oldest first, in one statement.

    SQLite: the caller's `BEGIN IMMEDIATE` transaction holds the database's write lock, so no two
    workers can select the same rows. PostgreSQL: `FOR UPDATE SKIP LOCKED` lets concurrent workers
    each take different rows without waiting on one another. An expired lease (a worker that died
    or hung) matches `locked_until < now` and is reclaimed here too.
    """
    now = database_now(connection)
    due = (
        select(T.id)
        .where(
            T.status == TaskStatus.ACCEPTED,
            T.run_at <= now,
            or_(T.locked_until.is_(None), T.locked_until < now),
            T.resource.in_(list(resources)),
        )
        .order_by(T.run_at)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        # `id = ANY(ARRAY(...))`: the chosen ids are probed on the primary key. `id IN (...)` was
        # planned as a hash semi-join over a sequential scan of the whole table (finished tasks
        # included: it grows with the retention), 7.9 ms for a claim of 400 of 5,000 queued
        # tasks against 4.9 ms (EXPLAIN ANALYZE, PostgreSQL 15, 2026-12-02).
        picked = T.id == any_(func.array(due.with_for_update(skip_locked=True).scalar_subquery()))
    else:
        picked = T.id.in_(due.scalar_subquery())
    stmt = (
        update(TASKS)
        .where(picked)
        .values(
            locked_by=worker_id,
            locked_until=now + dt.timedelta(seconds=lease_seconds),
            attempts=T.attempts + 1,
        )
        .returning(*TASKS.c)
    )
    tasks = [ClaimedTask.from_row(row, worker_id) for row in connection.execute(stmt)]
    return sorted(tasks, key=lambda t: t.run_at)


def finish(
    connection: Connection,
    task_id: str,
    *,
    worker_id: str,
    status: TaskStatus,
    path: str | None,
    message: str,
    worker_data: dict[str, Any],
    last_error: str | None = None,
) -> bool:
    """Mark the task done, if this worker still holds it. False means the lease was lost."""
    result = connection.execute(
        _FINISH,
        {
            "task_id": task_id,
            "worker_id": worker_id,
            "new_status": status,
            "new_completed_date": utcnow(),
            "new_path": path,
            "new_message": message,
            "new_worker_data": worker_data,
            "new_last_error": last_error,
        },
    )
    return _rowcount(result) == 1


# Built once: `finish` runs once per task.
_FINISH = (
    update(TASKS)
    .where(
        T.id == bindparam("task_id"),
        T.locked_by == bindparam("worker_id"),
        T.status == TaskStatus.ACCEPTED,
    )
    .values(
        status=bindparam("new_status"),
        completed_date=bindparam("new_completed_date"),
        path=bindparam("new_path"),
        message=bindparam("new_message"),
        worker_data=bindparam("new_worker_data", type_=T.worker_data.type),
        locked_by=None,
        locked_until=None,
        last_error=bindparam("new_last_error"),
    )
)


# PostgreSQL: a batch's finishes in one statement, the values of each task side by side in arrays,
# each row finding its own by its id's position. Not a join with unnest(...): on a queue that was
# never analyzed, or whose locked_by is mostly null, the planner took `locked_by = :worker_id` for
# one row and scanned the whole table, rescanning the arrays for every row it kept: 20 ms for 100
# tasks of 5,000, against 1.4 ms this way, a primary-key probe whatever the statistics (EXPLAIN
# ANALYZE, PostgreSQL 15, 2026-12-02; bench/task_bench.py --statements had it at 0.14 ms/task,
# the costliest statement of a drain).
_AT = "(CAST(:{} AS text[]))[array_position(CAST(:ids AS text[]), tasks.id)]"
_FINISH_MANY = text(
    f"""
    UPDATE tasks SET status = {_AT.format("statuses")}, completed_date = :completed,
        path = {_AT.format("paths")}, message = {_AT.format("messages")},
        worker_data = CAST({_AT.format("worker_data")} AS json), locked_by = NULL,
        locked_until = NULL, last_error = {_AT.format("errors")}
    WHERE tasks.id = ANY(CAST(:ids AS text[])) AND tasks.locked_by = :worker_id
        AND tasks.status = 'accepted'
    RETURNING tasks.id
    """
).bindparams(bindparam("completed", type_=UTCDateTime()))


def finish_many(
    connection: Connection, finishes: Sequence[dict[str, Any]], *, worker_id: str
) -> set[str]:
    """`finish` for many tasks (each a dict of task_id, status, path, message, worker_data and
    last_error): the ids of those this worker still held, now finished. One statement on
    PostgreSQL; on SQLite, where a statement costs microseconds, one each."""
    if not finishes:
        return set()
    if connection.dialect.name != "postgresql":
        return {f["task_id"] for f in finishes if finish(connection, worker_id=worker_id, **f)}
    result = connection.execute(
        _FINISH_MANY,
        {
            "completed": utcnow(),
            "worker_id": worker_id,
            "ids": [f["task_id"] for f in finishes],
            "statuses": [str(f["status"]) for f in finishes],
            "paths": [f["path"] for f in finishes],
            "messages": [f["message"] for f in finishes],
            "worker_data": [json.dumps(f["worker_data"]) for f in finishes],
            "errors": [f.get("last_error") for f in finishes],
        },
    )
    return set(result.scalars())


def hold(connection: Connection, task_ids: Sequence[str], *, worker_id: str) -> set[str]:
    """Which of these tasks this worker still holds; on PostgreSQL they are row-locked until the
    transaction ends, so no other worker can reclaim them meanwhile (a claim skips locked rows)."""
    query = select(T.id).where(
        T.id.in_(list(task_ids)), T.locked_by == worker_id, T.status == TaskStatus.ACCEPTED
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return set(connection.scalars(query))


def backoff_seconds(attempts: int, base: float, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter, so failing tasks do not retry in lockstep."""
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return random.uniform(ceiling / 2, ceiling)


def schedule_retry(
    connection: Connection, task_id: str, *, worker_id: str, delay: float, error: str
) -> bool:
    now = database_now(connection)
    result = connection.execute(
        update(TASKS)
        .where(T.id == task_id, T.locked_by == worker_id, T.status == TaskStatus.ACCEPTED)
        .values(
            run_at=now + dt.timedelta(seconds=delay),
            locked_by=None,
            locked_until=None,
            last_error=error,
        )
    )
    return _rowcount(result) == 1


def release(
    connection: Connection,
    task_ids: Sequence[str],
    *,
    worker_id: str,
    run_after: float | None = None,
) -> int:
    """Give back claimed tasks this worker will not run (shutdown; or, with `run_after`, not for
    that many seconds: a webhook delivery whose receiver is stalled); the attempt does not
    count."""
    if not task_ids:
        return 0
    values: dict[str, Any] = {
        "locked_by": None,
        "locked_until": None,
        "attempts": case((T.attempts > 0, T.attempts - 1), else_=0),
    }
    if run_after is not None:
        values["run_at"] = database_now(connection) + dt.timedelta(seconds=run_after)
    result = connection.execute(
        update(TASKS)
        .where(T.id.in_(list(task_ids)), T.locked_by == worker_id, T.status == TaskStatus.ACCEPTED)
        .values(**values)
    )
    return _rowcount(result)


def heartbeat(
    connection: Connection, task_ids: Sequence[str], *, worker_id: str, lease_seconds: float
) -> int:
    """Extend the leases of all this worker's running tasks, in one statement."""
    if not task_ids:
        return 0
    now = database_now(connection)
    result = connection.execute(
        update(TASKS)
        .where(T.id.in_(list(task_ids)), T.locked_by == worker_id, T.status == TaskStatus.ACCEPTED)
        .values(locked_until=now + dt.timedelta(seconds=lease_seconds))
    )
    return _rowcount(result)


def renew_lease(
    connection: Connection, task_id: str, *, worker_id: str, attempt: int, lease_seconds: float
) -> bool:
    """Extend one task's lease from inside another transaction: a job that keeps its own (the SIS
    refresh on SQLite, sis/refresh.py) renews it in the transaction that commits its work, so the
    lease is fresh the moment the work is visible. True while this worker's run of this attempt
    holds it (then no other run of the task can have done or be doing the work)."""
    now = database_now(connection)
    result = connection.execute(
        update(TASKS)
        .where(
            T.id == task_id,
            T.locked_by == worker_id,
            T.attempts == attempt,
            T.status == TaskStatus.ACCEPTED,
        )
        .values(locked_until=now + dt.timedelta(seconds=lease_seconds))
    )
    return _rowcount(result) == 1


def prune_finished(connection: Connection, *, retention_days: int) -> int:
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    result = connection.execute(
        delete(TASKS).where(
            T.status.in_([TaskStatus.COMPLETE, TaskStatus.ERROR]), T.completed_date < cutoff
        )
    )
    return _rowcount(result)


def requeue_failed(
    connection: Connection, task_id: str, statuses: Sequence[str] = (TaskStatus.ERROR,)
) -> str | None:
    """Operator retry: a task in `error` (or another of `statuses`: a webhook delivery may be
    sent again) goes back to `accepted` with its attempts reset.

    None when requeued, else why not.
    """
    result = connection.execute(
        update(TASKS)
        .where(T.id == task_id, T.status.in_(list(statuses)))
        .values(
            status=TaskStatus.ACCEPTED,
            attempts=0,
            run_at=utcnow(),
            locked_by=None,
            locked_until=None,
            completed_date=None,
            path=None,
            message=None,
            worker_data={},
        )
    )
    if _rowcount(result) == 1:
        return None
    status = connection.scalar(select(T.status).where(T.id == task_id))
    return "no such task" if status is None else f"it is {status}, not error"


def postpone(
    connection: Connection, resource: str, resource_ids: Iterable[str], *, run_after: float
) -> int:
    """Queued tasks of `resource` about these resource ids, not held by a worker, become due in
    `run_after` seconds at the earliest (one statement)."""
    ids = sorted(set(resource_ids))
    if not ids:
        return 0
    later = database_now(connection) + dt.timedelta(seconds=run_after)
    result = connection.execute(
        update(TASKS)
        .where(
            T.status == TaskStatus.ACCEPTED,
            T.resource == resource,
            T.resource_id.in_(ids),
            T.locked_by.is_(None),
            T.run_at < later,
        )
        .values(run_at=later)
    )
    return _rowcount(result)


def run_now(connection: Connection, task_id: str) -> bool:
    """A queued task waiting for its backoff runs now (unless a worker holds it)."""
    now = database_now(connection)
    result = connection.execute(
        update(TASKS)
        .where(T.id == task_id, T.status == TaskStatus.ACCEPTED, T.locked_by.is_(None))
        .values(run_at=now)
    )
    return _rowcount(result) == 1


def stats(connection: Connection) -> dict[str, Any]:
    """Counts per resource and state, and the oldest queued task's age, in one grouped query."""
    now = utcnow()
    leased = and_(
        T.status == TaskStatus.ACCEPTED, T.locked_until.is_not(None), T.locked_until >= now
    )
    rows = connection.execute(
        select(
            T.resource,
            func.count().filter(T.status == TaskStatus.ACCEPTED, ~leased),
            func.count().filter(leased),
            func.count().filter(T.status == TaskStatus.ERROR),
            func.count().filter(T.status == TaskStatus.COMPLETE),
            func.min(T.request_date).filter(T.status == TaskStatus.ACCEPTED, ~leased),
        )
        .group_by(T.resource)
        .order_by(T.resource)
    ).all()
    per_resource = []
    for resource, queued, running, failed, complete, oldest in rows:
        if oldest is not None and isinstance(oldest, str):  # SQLite aggregate skips the type
            oldest = dt.datetime.fromisoformat(oldest).replace(tzinfo=dt.UTC)
        elif oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        per_resource.append(
            {
                "resource": resource,
                "queued": queued,
                "running": running,
                "failed": failed,
                "complete": complete,
                "oldest_queued_age": (now - oldest).total_seconds() if oldest is not None else None,
            }
        )
    ages = [r["oldest_queued_age"] for r in per_resource if r["oldest_queued_age"] is not None]
    return {
        "queued": sum(r["queued"] for r in per_resource),
        "running": sum(r["running"] for r in per_resource),
        "failed": sum(r["failed"] for r in per_resource),
        "complete": sum(r["complete"] for r in per_resource),
        "oldest_queued_age": max(ages) if ages else None,
        "per_resource": per_resource,
    }


def status_counts(connection: Connection) -> list[tuple[str, int, dt.datetime | None]]:
    """(status, tasks, oldest request) per status, in one grouped query: the metrics' figures."""
    rows = connection.execute(
        select(T.status, func.count(), func.min(T.request_date)).group_by(T.status)
    ).all()
    return [(str(s), int(c), m) for s, c, m in rows]


def insert_tasks(
    connection: Connection, tasks: list[dict[str, Any]], *, announce: bool = True
) -> None:
    """Queue tasks in the caller's transaction (one statement); its commit publishes them.
    `announce=False`: no NOTIFY (webhook deliveries: the deliverer that queues them claims them
    itself, and they are nothing the handlers' workers could run)."""
    if connection.dialect.name == "postgresql":
        # The database's clock, not this process's: "the newest request wins" compares
        # request_date across API processes on different machines.
        now = database_now(connection)
        for task in tasks:
            task["request_date"] = task["run_at"] = now
    connection.execute(insert(TASKS), tasks)
    if announce and connection.dialect.name == "postgresql":
        # Delivered to LISTENers only when this transaction commits, never for a rolled-back one.
        for task in tasks:
            connection.execute(
                text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": task["id"]}
            )


def insert_periodic(connection: Connection, tasks: list[dict[str, Any]]) -> int:
    """Queue periodic jobs' slot tasks (tasks/periodic.py) unless they exist: their ids are derived
    from the slot, so however many processes insert one, one row exists. How many were new."""
    if connection.dialect.name == "postgresql":
        now = database_now(connection)
        for task in tasks:
            task["request_date"] = task["run_at"] = now
        statement: Any = postgresql.insert(TASKS)
    else:
        statement = sqlite.insert(TASKS)
    new = connection.execute(
        statement.on_conflict_do_nothing(index_elements=["id"]).returning(T.id), tasks
    ).all()
    if new and connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_notify(:c, :p)"), [{"c": NOTIFY_CHANNEL, "p": r.id} for r in new]
        )
    return len(new)


def put_finished_tasks(connection: Connection, tasks: list[dict[str, Any]]) -> None:
    """Store finished task records as given, replacing any with the same ids (`registrar demo`'s
    sample tasks). Never queued: they are done, so no worker claims them and nothing is sent."""
    ids = [t["id"] for t in tasks]
    connection.execute(delete(TASKS).where(T.id.in_(ids)))
    connection.execute(insert(TASKS), tasks)


def queue_one(
    connection: Connection, task: dict[str, Any], idempotency: IdempotencyClaim | None
) -> str:
    """Queue `task` unless the Idempotency-Key names an earlier one: the task id to answer."""
    if idempotency is not None:
        replay = find_replay(connection, idempotency)
        if replay is not None:
            return replay
    insert_tasks(connection, [task])
    if idempotency is not None:
        remember(connection, idempotency, task["id"])
    return str(task["id"])


def get_task(connection: Connection, task_id: str) -> Row[Any] | None:
    return connection.execute(select(TASKS).where(T.id == task_id)).first()


def tasks_of(connection: Connection, ids: list[str], sub: str) -> dict[str, Row[Any]]:
    """The tasks with these ids that `sub` asked for, by id: one query (a feed page)."""
    query = select(TASKS).where(T.id.in_(bindparam("ids", expanding=True)), T.sub == sub)
    return {row.id: row for row in connection.execute(query, {"ids": ids})}


def unfinished_of(connection: Connection, ids: list[str]) -> set[str]:
    """Which of these tasks are still `accepted` (waiters on a timer ask it once for all)."""
    query = select(T.id).where(
        T.id.in_(bindparam("ids", expanding=True)), T.status == TaskStatus.ACCEPTED
    )
    return set(connection.scalars(query, {"ids": ids}))


def announce_finished(connection: Connection, task_ids: Sequence[str]) -> None:
    """PostgreSQL: tell every process's waiters (db/notices.py) that these tasks finished, when
    this transaction commits: one NOTIFY a batch (its payload holds at most 8000 bytes: 300 ids
    of 25)."""
    if connection.dialect.name != "postgresql":
        return
    for start in range(0, len(task_ids), _IDS_PER_NOTICE):
        chunk = task_ids[start : start + _IDS_PER_NOTICE]
        connection.execute(_NOTIFY, {"c": TASKS_FINISHED_CHANNEL, "p": ",".join(chunk)})


_NOTIFY = text("SELECT pg_notify(:c, :p)")
# Ids per NOTIFY: its payload holds at most 8000 bytes, 300 ids of 25.
_IDS_PER_NOTICE = 300


def finished_notice(task_ids: Sequence[str]) -> tuple[str, str] | None:
    """The one NOTIFY (channel, payload) that tells every process's waiters these tasks finished,
    for the caller to send in a statement of its own; None when they need more than one (or
    none): `announce_finished` then."""
    if not task_ids or len(task_ids) > _IDS_PER_NOTICE:
        return None
    return TASKS_FINISHED_CHANNEL, ",".join(task_ids)


def find_replay(connection: Connection, claim: IdempotencyClaim) -> str | None:
    """The task id an earlier identical request queued; 422 if the key was used for another one."""
    k = KEYS.c
    mine = (k.sub == claim.sub) & (k.key == claim.key)
    row = connection.execute(select(k.request_hash, k.task_id, k.created_at).where(mine)).first()
    if row is None:
        return None
    if row.created_at < utcnow() - KEY_TTL:
        # Expired but not yet pruned: forget it, so the key can name this new request.
        connection.execute(delete(KEYS).where(mine))
        return None
    if row.request_hash != claim.fingerprint:
        raise KeyReused
    return str(row.task_id)


def remember(connection: Connection, claim: IdempotencyClaim, task_id: str) -> None:
    connection.execute(
        insert(KEYS).values(
            sub=claim.sub,
            key=claim.key,
            request_hash=claim.fingerprint,
            task_id=task_id,
            created_at=utcnow(),
        )
    )


def prune_keys(connection: Connection) -> int:
    result = connection.execute(delete(KEYS).where(KEYS.c.created_at < utcnow() - KEY_TTL))
    return int(getattr(result, "rowcount", 0) or 0)
