"""What a task handler is, and what it gets and gives back (tasks/registry.py lists them all).

A handler is `def handler(connection, task: ClaimedTask) -> HandlerResult`: plain (not async)
code over a SQLAlchemy Connection, run by `Database.write` inside the worker's write transaction,
the same one that marks the task finished, so its writes and the task's completion commit
together or not at all. (Plain code, so a batch of tasks runs in one hop to SQLite's writer
thread; on PostgreSQL the same function runs through `run_sync`.) It must be idempotent (a task
whose lease expired mid-run may be delivered again): write a marker row keyed by the task id and
do nothing if it already exists.

Raise `PermanentTaskError(problems)` for a failure that retrying cannot fix (the task ends `error`,
its `path` the URL that was called, its `message` the problems as `task_message` writes them); any
other exception is transient and the task is retried with exponential backoff until its
`max_attempts`.

A task type that arrives in numbers may instead have a `BatchHandler`: one call for all the
claimed tasks of that type in a batch, with set-based statements (one read, one UPDATE, one INSERT
for a hundred tasks instead of five statements each). It returns each task's result or its
`PermanentTaskError` (having written nothing for that task), so one bad task ends `error` beside
its neighbours without rolling them back; an exception it raises is transient for the whole batch,
and the worker then runs each task alone, in a savepoint, through the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row

from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.events.record import Change


@dataclass(frozen=True)
class HandlerResult:
    # Absolute URL of the created or updated resource; None for the service's own periodic jobs,
    # which change no one resource.
    path: str | None
    message: str
    # What the task changed, for the change record: the worker records them with the batch's
    # other changes and its task.completed events, in one statement, last before the commit.
    changes: tuple[Change, ...] = ()


def task_message(problems: list[str]) -> str:
    """A failed task's `message`: its problems as seed 000 writes them, a list in Python's look,
    `['Missing attribute: school.', 'Unknown petition_code: Q99.']`.

    Always single quotes, whatever a problem holds: a backslash and a quote are escaped with a
    backslash (`['Unknown netid: o\\'brien.']`) and any other unprintable character as Python's
    repr writes it, so the look never changes with the values (`str(list)` switches to double
    quotes for a value with a quote in it).
    """
    return "[" + ", ".join(f"'{_quoted(p)}'" for p in problems) + "]"


def _quoted(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\" or ch == "'":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


class PermanentTaskError(Exception):
    """The task cannot succeed: finish it as `error` with these problems as its message."""

    def __init__(self, problems: list[str]) -> None:
        self.message = task_message(problems)
        super().__init__(self.message)


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
    # The X-Correlation-ID of the request that queued it (None for tasks queued otherwise).
    correlation_id: str | None = None

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
            correlation_id=m.get("correlation_id"),
        )


Handler = Callable[[Connection, ClaimedTask], HandlerResult]
# Per task id: its result, or the permanent error it ends with (nothing written for it).
BatchResults = dict[str, HandlerResult | PermanentTaskError]


@dataclass(frozen=True)
class BatchHandler:
    """A handler for many tasks of one type at once (see the module's docstring). It is a
    `Handler` too: called with one task, it runs the batch of one and raises its error."""

    run: Callable[[Connection, Sequence[ClaimedTask]], BatchResults]

    def __call__(self, connection: Connection, task: ClaimedTask) -> HandlerResult:
        result = self.run(connection, [task])[task.id]
        if isinstance(result, PermanentTaskError):
            raise result
        return result


# A job that keeps its own transactions (the SIS refresh: a load streams a file in one long
# transaction of its own, `Database.bulk`): the worker runs it outside its batches, keeps its lease
# alive meanwhile, and then finishes the task as for a handler (PermanentTaskError: `error` at
# once; any other exception: retried). Exactly-once effect is the job's to ensure: a job killed
# after its commit and before the task's finish runs again, so it must record in its own
# transaction that it is done (sis/refresh.py records the refresh).
OwnTransactionJob = Callable[[Database, Settings, ClaimedTask], Awaitable[HandlerResult]]


def absolute_url(task: ClaimedTask, path: str) -> str:
    """`path` (starting with /api/) under the base URL captured when the task was created."""
    return task.base_url.rstrip("/") + path
