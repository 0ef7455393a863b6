"""Wake-ups after commits, for long-polls: a task finished, events were recorded.

A long-poll must not ask the database in a loop: a thousand waiting clients would cost a thousand
queries a tick. So a waiter registers first (`watch_task`, `watch_events`), reads once, and then
sleeps on an asyncio.Event that only these set:
- in this process, the worker right after its batch commits (`tasks_finished`, `events_recorded`);
- PostgreSQL: one LISTEN connection per process (`listen`, the pattern the worker uses for new
  tasks) on the channels a committing batch NOTIFYs (the finished ids; that events exist);
- SQLite, a worker in another process: SQLite has no NOTIFY, but every commit by any process
  changes the WAL-index header (db/read_cache.py maps it). While anyone waits, one timer per
  process reads that header every `SQLITE_TICK` seconds (a memory read, no system call, no
  query); when it changed, ONE query asks which of the awaited tasks finished (or whether events
  were recorded) and wakes those waiters alone. Without a mapped header (not WAL) the same query
  runs every second instead.
Waiting costs nothing but memory: no task per waiter, nothing runs per waiter until it is woken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from registrar.db.read_cache import WalChangeCounter

log = logging.getLogger("registrar.db")

TASKS_FINISHED_CHANNEL = "registrar_tasks_finished"
EVENTS_CHANNEL = "registrar_events"
# A separate SQLite worker's commit is seen within this (plus one query): 5 ms keeps wait latency
# well inside its 20 ms target; an idle timer costs ~2 us of CPU a tick (0.04% of a core).
SQLITE_TICK = 0.005
SQLITE_FALLBACK_TICK = 1.0


async def listen(
    dsn: str,
    channels: dict[str, Callable[[str], None]],
    on_connect: Callable[[], None],
    name: str,
) -> None:
    """PostgreSQL: LISTEN on `channels` for ever over one connection of its own, reconnecting with
    a backoff; `on_connect` after each (re)connection, to catch up on what was missed."""
    import asyncpg

    backoff = 1.0
    while True:
        conn = None
        try:
            conn = await asyncpg.connect(dsn)
            for channel, callback in channels.items():
                await conn.add_listener(
                    channel, lambda _c, _pid, _ch, payload, cb=callback: cb(payload)
                )
            backoff = 1.0
            on_connect()
            while True:
                await asyncio.sleep(10)
                await conn.fetchval("SELECT 1")  # notice a dead connection
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: LISTEN connection lost (%s); retrying", name, exc)
            await asyncio.sleep(backoff)
            backoff = min(30.0, backoff * 2)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5)


class Notices:
    """This process's waiters and what wakes them (one per process, on the Runtime)."""

    def __init__(
        self,
        *,
        dialect: str,
        dsn: str | None = None,
        sqlite_path: str | None = None,
        unfinished: Callable[[list[str]], Awaitable[set[str]]] | None = None,
        newest_event: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.dialect = dialect
        self.dsn = dsn
        self.sqlite_path = sqlite_path
        # The two queries the SQLite timer asks (once per change, for all waiters).
        self._unfinished = unfinished
        self._newest_event = newest_event
        self._tasks: dict[str, set[asyncio.Event]] = {}
        self._events: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: asyncio.Task[None] | None = None
        self._counter: WalChangeCounter | None = None
        self._last_position = -1

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._tasks.values()) + len(self._events)

    # --- publishing (after COMMIT) ------------------------------------------------------------

    def tasks_finished(self, ids: Iterable[str]) -> None:
        """Wake whoever waits on these tasks. Callable from any thread."""
        self._call(self._wake_tasks, list(ids))

    def events_recorded(self) -> None:
        self._call(self._wake_events)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _wake_tasks(self, ids: list[str]) -> None:
        for task_id in ids:
            for waiter in self._tasks.get(task_id, ()):
                waiter.set()

    def _wake_events(self) -> None:
        for waiter in self._events:
            waiter.set()

    # --- waiting --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def watch_task(self, task_id: str) -> Iterator[asyncio.Event]:
        """Set once `task_id` may have finished. Enter it BEFORE reading the task, so a finish
        that commits between the read and the wait is not missed."""
        waiter = self._register()
        self._tasks.setdefault(task_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._tasks.get(task_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._tasks[task_id]

    @contextlib.contextmanager
    def watch_events(self) -> Iterator[asyncio.Event]:
        """Set once events may have been recorded (enter before reading the feed)."""
        waiter = self._register()
        self._events.add(waiter)
        try:
            yield waiter
        finally:
            self._events.discard(waiter)

    def _register(self) -> asyncio.Event:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self.dialect == "sqlite" and (self._background is None or self._background.done()):
            self._background = asyncio.create_task(self._sqlite_timer(), name="notices timer")
        return asyncio.Event()

    async def start(self) -> None:
        """Bind to the running loop; on PostgreSQL, start listening."""
        self._loop = asyncio.get_running_loop()
        if self.dialect == "postgresql" and self.dsn is not None:

            def finished(payload: str) -> None:
                self._wake_tasks(payload.split(","))

            def recorded(_payload: str) -> None:
                self._wake_events()

            def catch_up() -> None:  # anything may have happened while not listening
                self._wake_events()
                self._wake_tasks(list(self._tasks))

            self._background = asyncio.create_task(
                listen(
                    self.dsn,
                    {TASKS_FINISHED_CHANNEL: finished, EVENTS_CHANNEL: recorded},
                    catch_up,
                    "notices",
                ),
                name="notices listen",
            )

    async def stop(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._background
            self._background = None
        if self._counter is not None:
            self._counter.close()
            self._counter = None

    async def _sqlite_timer(self) -> None:
        """Runs while anyone waits (SQLite): see the module's docstring."""
        if self._counter is None and self.sqlite_path:
            counter = WalChangeCounter(self.sqlite_path)
            if await asyncio.to_thread(counter.attach):
                self._counter = counter
        last = self._counter.token() if self._counter is not None else None
        tick = SQLITE_TICK if self._counter is not None else SQLITE_FALLBACK_TICK
        while self._tasks or self._events:
            await asyncio.sleep(tick)
            if self._counter is not None:
                token = self._counter.token()
                if token == last and token is not None:
                    continue
                last = token
            try:
                await self._ask()
            except Exception:
                log.exception("checking for finished tasks failed")

    async def _ask(self) -> None:
        if self._tasks and self._unfinished is not None:
            awaited = list(self._tasks)
            still = await self._unfinished(awaited)
            self._wake_tasks([t for t in awaited if t not in still])
        if self._events and self._newest_event is not None:
            newest = await self._newest_event()
            if newest != self._last_position:
                self._last_position = newest
                self._wake_events()
