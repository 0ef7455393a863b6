"""Queue statements: claim with a lease, finish under the lease, retry, release, heartbeat, prune.

Every statement that changes a claimed task is guarded by `locked_by = <this worker>`: a worker
whose lease expired and whose task another worker reclaimed updates nothing, so it cannot finish
a task twice (the caller rolls its handler's writes back when the guard matches no row).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.db import database_now, utcnow
from registrar.tasks.models import Task

_NO_SYNC = {"synchronize_session": False}
TASKS = cast(Table, Task.__table__)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def claim(
    session: AsyncSession,
    *,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    resources: Sequence[str],
) -> list[Task]:
    """Lease up to `limit` due tasks, oldest first, in one statement.

    SQLite: the caller's `BEGIN IMMEDIATE` transaction holds the database's write lock, so no two
    workers can select the same rows. PostgreSQL: `FOR UPDATE SKIP LOCKED` lets concurrent workers
    each take different rows without waiting on one another. An expired lease (a worker that died
    or hung) matches `locked_until < now` and is reclaimed here too.
    """
    now = await database_now(session)
    due = (
        select(Task.id)
        .where(
            Task.status == "accepted",
            Task.run_at <= now,
            or_(Task.locked_until.is_(None), Task.locked_until < now),
            Task.resource.in_(list(resources)),
        )
        .order_by(Task.run_at)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(Task)
        .where(Task.id.in_(due.scalar_subquery()))
        .values(
            locked_by=worker_id,
            locked_until=now + dt.timedelta(seconds=lease_seconds),
            attempts=Task.attempts + 1,
        )
        .returning(Task)
    )
    rows = (await session.execute(stmt, execution_options={"populate_existing": True})).scalars()
    return sorted(rows.all(), key=lambda t: t.run_at)


async def finish(
    session: AsyncSession,
    task_id: str,
    *,
    worker_id: str,
    status: str,
    path: str | None,
    message: str,
    worker_data: dict[str, Any],
    last_error: str | None = None,
) -> bool:
    """Mark the task done, if this worker still holds it. False means the lease was lost."""
    # On the Table, not the mapped class: this runs once per task and the ORM's bulk-DML layer
    # would cost more than the statement.
    t = TASKS
    result = await session.execute(
        update(t)
        .where(t.c.id == task_id, t.c.locked_by == worker_id, t.c.status == "accepted")
        .values(
            status=status,
            completed_date=utcnow(),
            path=path,
            message=message,
            worker_data=worker_data,
            locked_by=None,
            locked_until=None,
            last_error=last_error,
        )
    )
    return _rowcount(result) == 1


def backoff_seconds(attempts: int, base: float, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter, so failing tasks do not retry in lockstep."""
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return random.uniform(ceiling / 2, ceiling)


async def schedule_retry(
    session: AsyncSession, task_id: str, *, worker_id: str, delay: float, error: str
) -> bool:
    now = await database_now(session)
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.locked_by == worker_id, Task.status == "accepted")
        .values(
            run_at=now + dt.timedelta(seconds=delay),
            locked_by=None,
            locked_until=None,
            last_error=error,
        ),
        execution_options=_NO_SYNC,
    )
    return _rowcount(result) == 1


async def release(session: AsyncSession, task_ids: Sequence[str], *, worker_id: str) -> int:
    """Give back claimed tasks this worker will not run (shutdown); the attempt does not count."""
    if not task_ids:
        return 0
    result = await session.execute(
        update(Task)
        .where(Task.id.in_(list(task_ids)), Task.locked_by == worker_id, Task.status == "accepted")
        .values(
            locked_by=None,
            locked_until=None,
            attempts=case((Task.attempts > 0, Task.attempts - 1), else_=0),
        ),
        execution_options=_NO_SYNC,
    )
    return _rowcount(result)


async def heartbeat(
    session: AsyncSession, task_ids: Sequence[str], *, worker_id: str, lease_seconds: float
) -> int:
    """Extend the leases of all this worker's running tasks, in one statement."""
    if not task_ids:
        return 0
    now = await database_now(session)
    result = await session.execute(
        update(Task)
        .where(Task.id.in_(list(task_ids)), Task.locked_by == worker_id, Task.status == "accepted")
        .values(locked_until=now + dt.timedelta(seconds=lease_seconds)),
        execution_options=_NO_SYNC,
    )
    return _rowcount(result)


async def prune_finished(session: AsyncSession, *, retention_days: int) -> int:
    cutoff = utcnow() - dt.timedelta(days=retention_days)
    result = await session.execute(
        delete(Task).where(Task.status.in_(["complete", "error"]), Task.completed_date < cutoff),
        execution_options=_NO_SYNC,
    )
    return _rowcount(result)


async def requeue_failed(session: AsyncSession, task_id: str) -> bool:
    """Operator retry: a task in `error` goes back to `accepted` with its attempts reset."""
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == "error")
        .values(
            status="accepted",
            attempts=0,
            run_at=utcnow(),
            locked_by=None,
            locked_until=None,
            completed_date=None,
            path=None,
            message=None,
            worker_data={},
        ),
        execution_options=_NO_SYNC,
    )
    return _rowcount(result) == 1


async def stats(session: AsyncSession) -> dict[str, Any]:
    """Counts per resource and state, and the oldest queued task's age, in one grouped query."""
    now = utcnow()
    leased = and_(
        Task.status == "accepted", Task.locked_until.is_not(None), Task.locked_until >= now
    )
    rows = (
        await session.execute(
            select(
                Task.resource,
                func.count().filter(Task.status == "accepted", ~leased),
                func.count().filter(leased),
                func.count().filter(Task.status == "error"),
                func.count().filter(Task.status == "complete"),
                func.min(Task.request_date).filter(Task.status == "accepted", ~leased),
            )
            .group_by(Task.resource)
            .order_by(Task.resource)
        )
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
