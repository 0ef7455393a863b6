"""Queueing a task: what a write endpoint calls to answer `202 Accepted`.

The task row is both the queue and the record the client polls. `enqueue` inserts it in the caller's
write transaction; on PostgreSQL it also sends `NOTIFY` (delivered only when that transaction
commits), and after the commit it pokes the in-process worker so it starts within milliseconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.auth.tokens import Client
from registrar.db import utcnow
from registrar.runtime import Runtime
from registrar.tasks.idempotency import IdempotencyClaim, find_replay, remember
from registrar.tasks.models import Task

NOTIFY_CHANNEL = "registrar_tasks"
_WAKEUPS_KEY = "task_wakeups"


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
    now = utcnow()
    base = base_url_for(runtime, request)
    task = Task(
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
    session.add(task)
    await session.flush()
    if runtime.db.dialect == "postgresql":
        # Delivered to LISTENers only when this transaction commits, never for a rolled-back one.
        await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": task.id})
    _wake_after_commit(session, runtime)
    return task


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
    for attempt in range(3):
        try:
            async with runtime.db.writing() as session:
                if idempotency is not None:
                    replay = await find_replay(session, idempotency)
                    if replay is not None:
                        return accepted_response(replay, runtime.settings.task_retry_after_seconds)
                task = await enqueue(
                    session,
                    runtime=runtime,
                    request=request,
                    client=client,
                    resource=resource,
                    action=action,
                    resource_id=resource_id,
                    payload=payload,
                )
                if idempotency is not None:
                    await remember(session, idempotency, task.id)
            return accepted_response(task.id, runtime.settings.task_retry_after_seconds)
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
