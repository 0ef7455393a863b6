"""The handler registry: which code runs a task of a given (resource, action).

A handler is `async def handler(session, task) -> HandlerResult`. It runs inside the worker's write
transaction, the same one that marks the task finished, so its writes and the task's completion
commit together or not at all. It must be idempotent (a task whose lease expired mid-run may be
delivered again): write a marker row keyed by the task id and do nothing if it already exists.

Raise `PermanentTaskError(message)` for a failure that retrying cannot fix (the task ends `error`,
its `path` the URL that was called); any other exception is transient and the task is retried with
exponential backoff until its `max_attempts`.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from registrar.tasks.models import Task


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
class RunContext:
    """What a handler may want to record about the run (audit rows)."""

    worker_id: str
    started_at: dt.datetime
    attempt: int


Handler = Callable[[AsyncSession, Task], Awaitable[HandlerResult]]

_HANDLERS: dict[tuple[str, str], Handler] = {}

# Modules whose import registers handlers. A worker imports them all before claiming, so a
# `registrar worker` process knows every kind of task an API process can queue.
HANDLER_MODULES: list[str] = ["registrar.enrollments.writes", "registrar.petitions.handlers"]


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


def run_context(session: AsyncSession) -> RunContext:
    """The current run's context; the worker puts it in `session.info` before calling a handler."""
    ctx = session.info.get("task_run")
    if not isinstance(ctx, RunContext):
        raise RuntimeError("run_context() called outside a task run")
    return ctx


def absolute_url(task: Task, path: str) -> str:
    """`path` (starting with /api/) under the base URL captured when the task was created."""
    return task.base_url.rstrip("/") + path
