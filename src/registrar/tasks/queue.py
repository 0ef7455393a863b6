"""This process's side of the task queue: it queues new tasks and wakes in-process workers.

The task row is both the queue and the record the client polls. It is inserted in the
transaction whose commit comes before the 202; on PostgreSQL that transaction also sends `NOTIFY`
(delivered only when it commits), and after the commit the in-process worker is poked so it starts
within milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError

from registrar.db.database import Database
from registrar.tasks.idempotency import IdempotencyClaim
from registrar.tasks.repository import insert_tasks, queue_one


def set_from_any_thread(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    """Set `event`, which belongs to `loop`, from any thread: at once on the loop's own thread,
    else through the loop (an asyncio.Event is not thread-safe)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        event.set()
    elif not loop.is_closed():
        loop.call_soon_threadsafe(event.set)


class TaskQueue:
    """Queues tasks for requests (`enqueue`) and pokes the workers of this process after each
    commit (`add_wakeup`). One per process, on the Runtime."""

    MAX_BATCH = 500

    def __init__(self, db: Database) -> None:
        self.db = db
        self._wakeups: list[Callable[[], None]] = []
        # SQLite group commit: tasks waiting for the next transaction, and the task writing them.
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def add_wakeup(self, wake: Callable[[], None]) -> None:
        """Register an in-process worker's wake-up; it is called after each enqueue commits."""
        self._wakeups.append(wake)

    def remove_wakeup(self, wake: Callable[[], None]) -> None:
        if wake in self._wakeups:
            self._wakeups.remove(wake)

    def _wake_workers(self) -> None:
        """Poke in-process workers; only after COMMIT, since before it no worker can see the row."""
        for wake in list(self._wakeups):
            wake()

    async def enqueue(self, task: dict[str, Any], idempotency: IdempotencyClaim | None) -> str:
        """Queue `task` (a row from tasks.service.new_task), honouring an Idempotency-Key (see
        tasks/idempotency.py): the id of the task to answer with, once it is committed.

        With a key, the lookup, the task and the key row share one transaction. Two concurrent
        requests with the same new key: on SQLite the write lock orders them, so the second sees
        the first's row; on PostgreSQL the second's INSERT of the key fails on its primary key and
        we run once more, which then finds the first's task.
        """
        if idempotency is None and self.db.dialect == "sqlite":
            await self._group_commit(task)
            return str(task["id"])
        for attempt in range(3):
            try:
                task_id = await self.db.write(queue_one, task, idempotency)
            except IntegrityError:
                if idempotency is None or attempt == 2:
                    raise
                await asyncio.sleep(0)
                continue
            self._wake_workers()
            return task_id
        raise AssertionError("unreachable")

    # SQLite group commit for new tasks: requests that arrive while one batch commits share the
    # next transaction. SQLite has a single writer, so under load one transaction per request
    # would make every request wait its turn for the lock; this way each waits for at most one
    # commit. A request still answers 202 only after the commit that holds its task.

    async def _group_commit(self, task: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((task, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="task group commit")
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.MAX_BATCH]
            del self._pending[: self.MAX_BATCH]
            try:
                await self.db.write(insert_tasks, [task for task, _f in batch])
            except Exception as exc:
                for _task, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._wake_workers()
            for _task, future in batch:
                if not future.done():
                    future.set_result(None)
