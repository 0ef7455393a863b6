"""Tasks as clients see them: a new task's record, and a task read back for its creator."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

from sqlalchemy import Row

from registrar.auth.client import Client
from registrar.core.clock import iso_z, iso_z_micro, utcnow
from registrar.core.problems import not_found
from registrar.core.settings import Settings
from registrar.core.text import usable_id
from registrar.db.database import Database
from registrar.db.notices import Notices
from registrar.tasks import repository
from registrar.tasks.models import TaskStatus

# GET /api/tasks/{id}?wait=S and `Prefer: wait=S` hold at most this long (spec 7).
MAX_WAIT_SECONDS = 60
TASK_ID_LENGTH = 24
TASK_ID = re.compile(r"[0-9a-f]{24}")


def new_task_id() -> str:
    return secrets.token_hex(TASK_ID_LENGTH // 2)


def new_task(
    settings: Settings,
    client: Client,
    *,
    base_url: str,
    called_path: str,
    resource: str,
    action: str,
    resource_id: str | None,
    payload: Any,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """The new task's row (column values), as `repository.insert_tasks` writes it.

    `base_url` is where the absolute `path` URLs will point (REGISTRAR_PUBLIC_URL, else the
    request's base: a worker has no request), `called_path` the path the client called,
    `correlation_id` the request's X-Correlation-ID (the worker logs the task under it).
    """
    now = utcnow()
    base = (settings.public_url or base_url).rstrip("/")
    return {
        "id": new_task_id(),
        "resource": resource,
        "action": action.upper(),
        "resource_id": resource_id,
        "payload": payload,
        "requester": client.requester(),
        "sub": client.sub,
        "private_scope": client.sees_private,
        "status": TaskStatus.ACCEPTED.value,
        "request_date": now,
        "worker_data": {},
        "base_url": base,
        "called_url": base + called_path,
        "attempts": 0,
        "max_attempts": settings.task_max_attempts,
        "run_at": now,
        "correlation_id": correlation_id,
    }


def represent(task: Row[Any]) -> dict[str, Any]:
    """Seeds 000 and 003's task record."""
    requester = dict(task.requester or {})
    for claim in ("exp", "iat"):  # decimal strings, exactly as seed 003 prints them (spec 1)
        value = requester.get(claim)
        if isinstance(value, int | float) and not isinstance(value, bool):
            requester[claim] = str(int(value))
    done = task.status != TaskStatus.ACCEPTED
    return {
        "id": task.id,
        "resource": task.resource,
        "action": task.action,
        "resource_id": task.resource_id,
        "payload": task.payload,
        "requester": {k: requester.get(k) for k in ("sub", "name", "email", "scope", "exp", "iat")},
        "status": task.status,
        "request_date": iso_z(task.request_date),
        "completed_date": iso_z_micro(task.completed_date) if done else None,
        "path": task.path if done else None,
        "worker_data": task.worker_data or {},
        "message": task.message if done else None,
    }


def _is_task_id(text: str) -> bool:
    return usable_id(text, TASK_ID_LENGTH) and TASK_ID.fullmatch(text) is not None


async def get_task(db: Database, task_id: str, client: Client) -> dict[str, Any]:
    """The task, for the `sub` that created it; 404 for anyone else, as for an unknown id."""
    task = None
    if _is_task_id(task_id):
        task = await db.read(repository.get_task, task_id)
    if task is None or task.sub != client.sub:
        raise not_found("task")
    return represent(task)


async def wait_for_task(
    db: Database, notices: Notices, task_id: str, client: Client, wait: float
) -> dict[str, Any]:
    """The task once it is done, or after `wait` seconds as it is then (404 as `get_task`).

    Woken by the worker's commit (db/notices.py), never by asking the database in a loop: the
    waiter registers before the first read, so a finish that commits in between is not missed.
    """
    deadline = time.monotonic() + min(wait, MAX_WAIT_SECONDS)
    with notices.watch_task(task_id) as woken:
        while True:
            woken.clear()
            task = await get_task(db, task_id, client)
            remaining = deadline - time.monotonic()
            if task["status"] != TaskStatus.ACCEPTED or remaining <= 0:
                return task
            try:
                await asyncio.wait_for(woken.wait(), remaining)
            except TimeoutError:
                return await get_task(db, task_id, client)
