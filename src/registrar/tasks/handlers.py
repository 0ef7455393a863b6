"""The handler registry: which code runs a task of a given (resource, action).

A handler is `def handler(connection, task: ClaimedTask) -> HandlerResult`: plain (not async)
code over a SQLAlchemy Connection, run by `Database.write` inside the worker's write transaction,
the same one that marks the task finished, so its writes and the task's completion commit
together or not at all. (Plain code, so a batch of tasks runs in one hop to SQLite's writer
thread; on PostgreSQL the same function runs through `run_sync`.) It must be idempotent (a task
whose lease expired mid-run may be delivered again): write a marker row keyed by the task id and
do nothing if it already exists.

Raise `PermanentTaskError(message)` for a failure that retrying cannot fix (the task ends `error`,
its `path` the URL that was called); any other exception is transient and the task is retried with
exponential backoff until its `max_attempts`.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row


@dataclass(frozen=True)
class HandlerResult:
    path: str  # absolute URL of the created or updated resource
    message: str


class PermanentTaskError(Exception):
    """The task cannot succeed: finish it as `error` with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ClaimedTask:
    """A task as a worker holds it: what it asked for, and this run (for audit rows)."""

    id: str
    resource: str
    action: str
    resource_id: str | None
    payload: Any
    requester: dict[str, Any]
    sub: str
    private_scope: bool
    request_date: dt.datetime
    base_url: str
    called_url: str
    attempts: int  # this run's attempt, counting it
    max_attempts: int
    run_at: dt.datetime
    worker_id: str = ""
    started_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Row[Any], worker_id: str = "") -> ClaimedTask:
        m = row._mapping
        return cls(
            id=m["id"],
            resource=m["resource"],
            action=m["action"],
            resource_id=m["resource_id"],
            payload=m["payload"],
            requester=m["requester"] or {},
            sub=m["sub"],
            private_scope=bool(m["private_scope"]),
            request_date=m["request_date"],
            base_url=m["base_url"],
            called_url=m["called_url"],
            attempts=m["attempts"],
            max_attempts=m["max_attempts"],
            run_at=m["run_at"],
            worker_id=worker_id,
        )


Handler = Callable[[Connection, ClaimedTask], HandlerResult]

_HANDLERS: dict[tuple[str, str], Handler] = {}

# Modules whose import registers handlers. A worker imports them all before claiming, so a
# `registrar worker` process knows every kind of task an API process can queue.
HANDLER_MODULES: list[str] = ["registrar.enrollments.jobs", "registrar.petitions.jobs"]


def register_handler(resource: str, action: str, fn: Handler) -> Handler:
    _HANDLERS[(resource, action.upper())] = fn
    return fn


def get_handler(resource: str, action: str) -> Handler | None:
    return _HANDLERS.get((resource, action.upper()))


def known_resources() -> list[str]:
    return sorted({resource for resource, _action in _HANDLERS})


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(name)


def absolute_url(task: ClaimedTask, path: str) -> str:
    """`path` (starting with /api/) under the base URL captured when the task was created."""
    return task.base_url.rstrip("/") + path
