"""SQLite connections on threads of their own: how `Database.read` and `Database.write` run there.

SQLite's driver blocks, so the event loop hands each read or write to a thread. `run_in_executor`
would do, but every call there costs a pool checkout, a concurrent Future chained to an asyncio
Future, and one wake-up of the event loop per result: about as much CPU as the lookup itself.
Here each thread keeps one connection for its life, takes jobs from a queue, and finished jobs
are handed back together: one wake-up of the loop settles every result that is ready, so under
load the hand-off costs less per request, not more.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

log = logging.getLogger("registrar.db")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class ConnectionThreads:
    """`threads` threads, each with its own connection from `engine`, running jobs in order.

    With `transaction`, each job runs in a transaction (BEGIN as the engine's listener sets it,
    COMMIT on return, ROLLBACK on error); without, it runs with none (reads).
    """

    def __init__(self, engine: Engine, threads: int, name: str, *, transaction: bool) -> None:
        self.engine = engine
        self.transaction = transaction
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done: dict[asyncio.AbstractEventLoop, collections.deque[Any]] = {}
        self._settling: set[asyncio.AbstractEventLoop] = set()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue `fn(connection, *args)`; the future settles on the caller's event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return future

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)

    # --- on the connection's thread ---------------------------------------------------------

    def _serve(self) -> None:
        connection: Connection | None = None
        try:
            while (job := self._jobs.get()) is not None:
                loop, future, fn, args = job
                try:
                    if connection is None:
                        connection = self.engine.connect()
                    value, error = self._run(connection, fn, args), None
                except BaseException as exc:
                    value, error = None, exc
                    if connection is not None and connection.invalidated:
                        connection.close()
                        connection = None
                self._hand_back(loop, (future, value, error))
        finally:
            if connection is not None:
                connection.close()

    def _run(self, connection: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if self.transaction:
            with connection.begin():
                return fn(connection, *args)
        try:
            return fn(connection, *args)
        finally:
            # Ends the transaction SQLAlchemy opened in name only (reads emit no BEGIN).
            connection.rollback()

    def _hand_back(self, loop: asyncio.AbstractEventLoop, result: Any) -> None:
        with self._lock:
            self._done.setdefault(loop, collections.deque()).append(result)
            if loop in self._settling:
                return  # a settle already scheduled on that loop will take this one too
            self._settling.add(loop)
        try:
            loop.call_soon_threadsafe(self._settle, loop)
        except RuntimeError:  # the loop closed while the job ran: no one is waiting
            with self._lock:
                self._settling.discard(loop)
                self._done.pop(loop, None)

    # --- on the event loop ------------------------------------------------------------------

    def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._settling.discard(loop)
            done = self._done.pop(loop, collections.deque())
        for future, value, error in done:
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
