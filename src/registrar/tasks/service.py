"""Queueing a task: what a write endpoint calls to answer `202 Accepted`.

The task row is both the queue and the record the client polls. It is inserted in the
transaction whose commit comes before the 202; on PostgreSQL that transaction also sends `NOTIFY`
(delivered only when it commits), and after the commit the in-process worker is poked so it starts
within milliseconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any, cast

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Table, insert, text
from sqlalchemy.exc import IntegrityError

from registrar.auth.tokens import Client
from registrar.core.clock import utcnow
from registrar.core.runtime import Runtime
from registrar.db.database import database_now
from registrar.tasks.idempotency import IdempotencyClaim, find_replay, remember
from registrar.tasks.models import Task

NOTIFY_CHANNEL = "registrar_tasks"
_WAKEUPS_KEY = "task_wakeups"
TASKS = cast(Table, Task.__table__)


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


def _wake_workers(runtime: Runtime) -> None:
    """Poke in-process workers; only after COMMIT, since before it no worker can see the row."""
    for wake in list(runtime.extras.get(_WAKEUPS_KEY, [])):
        wake()


def new_task(
    runtime: Runtime,
    request: Request,
    client: Client,
    *,
    resource: str,
    action: str,
    resource_id: str | None,
    payload: Any,
) -> dict[str, Any]:
    """The new task's row (column values), as `insert_tasks` writes it."""
    now = utcnow()
    base = base_url_for(runtime, request)
    return {
        "id": new_task_id(),
        "resource": resource,
        "action": action.upper(),
        "resource_id": resource_id,
        "payload": payload,
        "requester": client.requester(),
        "sub": client.sub,
        "private_scope": client.sees_private,
        "status": "accepted",
        "request_date": now,
        "worker_data": {},
        "base_url": base,
        "called_url": base + request.url.path,
        "attempts": 0,
        "max_attempts": runtime.settings.task_max_attempts,
        "run_at": now,
    }


def insert_tasks(connection: Connection, tasks: list[dict[str, Any]]) -> None:
    """Queue tasks in the caller's transaction (one statement); its commit publishes them."""
    if connection.dialect.name == "postgresql":
        # The database's clock, not this process's: "the newest request wins" compares
        # request_date across API processes on different machines.
        now = database_now(connection)
        for task in tasks:
            task["request_date"] = task["run_at"] = now
    connection.execute(insert(TASKS), tasks)
    if connection.dialect.name == "postgresql":
        # Delivered to LISTENers only when this transaction commits, never for a rolled-back one.
        for task in tasks:
            connection.execute(
                text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": task["id"]}
            )


def _queue_one(
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


class _GroupCommit:
    """SQLite group commit for new tasks: requests that arrive while one batch commits share the
    next transaction. SQLite has a single writer, so under load one transaction per request would
    make every request wait its turn for the lock; this way each waits for at most one commit.
    A request still answers 202 only after the commit that holds its task.
    """

    MAX_BATCH = 500

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None

    async def submit(self, task: dict[str, Any]) -> None:
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
                await self.runtime.db.write(insert_tasks, [task for task, _f in batch])
            except Exception as exc:
                for _task, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            _wake_workers(self.runtime)
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
    task = new_task(
        runtime,
        request,
        client,
        resource=resource,
        action=action,
        resource_id=resource_id,
        payload=payload,
    )
    retry_after = runtime.settings.task_retry_after_seconds
    if idempotency is None and runtime.db.dialect == "sqlite":
        await _group_commit(runtime).submit(task)
        return accepted_response(task["id"], retry_after)
    for attempt in range(3):
        try:
            task_id = await runtime.db.write(_queue_one, task, idempotency)
        except IntegrityError:
            if idempotency is None or attempt == 2:
                raise
            await asyncio.sleep(0)
            continue
        _wake_workers(runtime)
        return accepted_response(task_id, retry_after)
    raise AssertionError("unreachable")


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, microseconds kept when present (clients time tasks with them)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
