"""Queueing a task: what a write endpoint calls to answer `202 Accepted`.

The task row is both the queue and the record the client polls. `enqueue` inserts it in the caller's
write transaction; on PostgreSQL it also sends `NOTIFY` (delivered only when that transaction
commits), and after the commit it pokes the in-process worker so it starts within milliseconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.auth.tokens import Client
from registrar.db import database_now, utcnow
from registrar.runtime import Runtime
from registrar.tasks.idempotency import IdempotencyClaim, find_replay, remember
from registrar.tasks.models import Task

NOTIFY_CHANNEL = "registrar_tasks"
_WAKEUPS_KEY = "task_wakeups"


def _sqlite_write_lock(runtime: Runtime) -> asyncio.Lock | None:
    if runtime.db.dialect != "sqlite":
        return None
    lock = runtime.extras.get("sqlite_write_lock")
    if lock is None:
        lock = runtime.extras["sqlite_write_lock"] = asyncio.Lock()
    return lock


@asynccontextmanager
async def queue_writing(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A write transaction for the queue's hot path (enqueue, claim, run, finish).

    SQLite has one writer at a time. Without this lock, concurrent `BEGIN IMMEDIATE`s from one
    process wait in SQLite's busy handler, which sleeps in steps of up to 100 ms in the driver's
    thread: throughput collapses under load. Queueing on an asyncio lock first hands the write lock
    over at once instead. (Other processes still meet the busy timeout, as before.)
    """
    lock = _sqlite_write_lock(runtime)
    if lock is None:
        async with runtime.db.writing() as session:
            yield session
    else:
        async with lock, runtime.db.writing() as session:
            yield session


def new_task_id() -> str:
    return secrets.token_hex(12)


def base_url_for(runtime: Runtime, request: Request) -> str:
    """REGISTRAR_PUBLIC_URL when set, else the base of the request (a worker has no request)."""
    if runtime.settings.public_url:
        return runtime.settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def add_wakeup(runtime: Runtime, wake: Callable[[], None]) -> None:
    """Register an in-process worker's wake-up; it is called after each enqueue commits."""
    runtime.extras.setdefault(_WAKEUPS_KEY, []).append(wake)


def remove_wakeup(runtime: Runtime, wake: Callable[[], None]) -> None:
    wakeups: list[Callable[[], None]] = runtime.extras.get(_WAKEUPS_KEY, [])
    if wake in wakeups:
        wakeups.remove(wake)


def _wake_after_commit(session: AsyncSession, runtime: Runtime) -> None:
    wakeups: list[Callable[[], None]] = runtime.extras.get(_WAKEUPS_KEY, [])
    if not wakeups or session.info.get("task_wakeup_armed"):
        return
    session.info["task_wakeup_armed"] = True

    def _after_commit(_sync_session: Any) -> None:
        session.info.pop("task_wakeup_armed", None)
        for wake in list(wakeups):
            wake()

    def _after_rollback(_sync_session: Any, _previous: Any) -> None:
        session.info.pop("task_wakeup_armed", None)

    # Poke only after COMMIT: before it, a worker on another connection cannot see the row.
    event.listen(session.sync_session, "after_commit", _after_commit, once=True)
    event.listen(session.sync_session, "after_soft_rollback", _after_rollback, once=True)


def build_task(
    runtime: Runtime,
    request: Request,
    client: Client,
    *,
    resource: str,
    action: str,
    resource_id: str | None,
    payload: Any,
    called_url: str | None = None,
    run_at: dt.datetime | None = None,
) -> Task:
    now = utcnow()
    base = base_url_for(runtime, request)
    return Task(
        id=new_task_id(),
        resource=resource,
        action=action.upper(),
        resource_id=resource_id,
        payload=payload,
        requester=client.requester(),
        sub=client.sub,
        private_scope=client.sees_private,
        status="accepted",
        request_date=now,
        worker_data={},
        base_url=base,
        called_url=called_url or base + request.url.path,
        attempts=0,
        max_attempts=runtime.settings.task_max_attempts,
        run_at=run_at or now,
    )


async def enqueue(
    session: AsyncSession,
    *,
    runtime: Runtime,
    request: Request,
    client: Client,
    resource: str,
    action: str,
    resource_id: str | None,
    payload: Any,
    called_url: str | None = None,
    run_at: dt.datetime | None = None,
) -> Task:
    """Insert a task in the caller's transaction; the caller commits (and so publishes) it."""
    task = build_task(
        runtime,
        request,
        client,
        resource=resource,
        action=action,
        resource_id=resource_id,
        payload=payload,
        called_url=called_url,
        run_at=run_at,
    )
    if runtime.db.dialect == "postgresql":
        # The database's clock, not this process's: "the newest request wins" compares
        # request_date across API processes on different machines.
        task.request_date = await database_now(session)
        if run_at is None:
            task.run_at = task.request_date
    session.add(task)
    await session.flush()
    if runtime.db.dialect == "postgresql":
        # Delivered to LISTENers only when this transaction commits, never for a rolled-back one.
        await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": task.id})
    _wake_after_commit(session, runtime)
    return task


class _GroupCommit:
    """SQLite group commit for new tasks: requests that arrive while one batch commits share the
    next transaction. SQLite has a single writer, so under load one transaction per request would
    make every request wait its turn for the lock; this way each waits for at most one commit.
    A request still answers 202 only after the commit that holds its task.
    """

    MAX_BATCH = 500

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pending: list[tuple[Task, asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None

    async def submit(self, task: Task) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((task, future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush(), name="task group commit")
        await future

    async def _flush(self) -> None:
        while self.pending:
            batch = self.pending[: self.MAX_BATCH]
            del self.pending[: self.MAX_BATCH]
            try:
                async with queue_writing(self.runtime) as session:
                    session.add_all([task for task, _f in batch])
                    _wake_after_commit(session, self.runtime)
            except Exception as exc:
                for _task, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _task, future in batch:
                if not future.done():
                    future.set_result(None)


def _group_commit(runtime: Runtime) -> _GroupCommit:
    group = runtime.extras.get("task_group_commit")
    if group is None:
        group = runtime.extras["task_group_commit"] = _GroupCommit(runtime)
    return group


def accepted_response(task_id: str, retry_after: int) -> JSONResponse:
    return JSONResponse(
        {"status": "accepted"},
        status_code=202,
        headers={"Location": f"/api/tasks/{task_id}", "Retry-After": str(retry_after)},
    )


async def accept_write(
    runtime: Runtime,
    request: Request,
    client: Client,
    *,
    resource: str,
    action: str,
    resource_id: str | None,
    payload: Any,
    idempotency: IdempotencyClaim | None = None,
) -> JSONResponse:
    """Queue a write and answer 202, honouring an Idempotency-Key (see tasks/idempotency.py).

    With a key, the lookup, the task and the key row share one transaction. Two concurrent requests
    with the same new key: on SQLite the write lock orders them, so the second sees the first's row;
    on PostgreSQL the second's INSERT of the key fails on its primary key and we run once more,
    which then finds the first's task.
    """
    fields: dict[str, Any] = {
        "resource": resource,
        "action": action,
        "resource_id": resource_id,
        "payload": payload,
    }
    retry_after = runtime.settings.task_retry_after_seconds
    if idempotency is None and runtime.db.dialect == "sqlite":
        task = build_task(runtime, request, client, **fields)
        await _group_commit(runtime).submit(task)
        return accepted_response(task.id, retry_after)
    for attempt in range(3):
        try:
            async with queue_writing(runtime) as session:
                if idempotency is not None:
                    replay = await find_replay(session, idempotency)
                    if replay is not None:
                        return accepted_response(replay, retry_after)
                task = await enqueue(
                    session, runtime=runtime, request=request, client=client, **fields
                )
                if idempotency is not None:
                    await remember(session, idempotency, task.id)
            return accepted_response(task.id, retry_after)
        except IntegrityError:
            if idempotency is None or attempt == 2:
                raise
            await asyncio.sleep(0)
    raise AssertionError("unreachable")


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, microseconds kept when present (clients time tasks with them)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
