"""SQLite connections on threads of their own: how `Database.read` and `Database.write` run there.

SQLite's driver blocks, so the event loop hands each read or write to a thread. `run_in_executor`
would do, but every call there costs a pool checkout, a concurrent Future chained to an asyncio
Future, and one wake-up of the event loop per result: about as much CPU as the lookup itself.
Here each thread keeps one connection for its life, takes jobs from a queue, and finished jobs
are handed back together: one wake-up of the loop settles every result that is ready, so under
load the hand-off costs less per request, not more.

Readers stop work nobody can use (issue 9 item 1). Each reader connection has a progress handler
that SQLite calls every `PROGRESS_STEPS` virtual-machine steps; it ends the running statement
(`interrupted`) when the job's caller has gone (its future was cancelled: the request's client
hung up, see http/middleware/observability.py) or the job's statement budget is spent (then the
caller gets `query_too_costly`). A job whose caller went away while it waited is not started.
The handler is the way rather than `Connection.interrupt()` from the event loop: it only ever
sees its own job, so it cannot stop the next job that the thread has already begun.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from registrar.core.problems import query_too_costly

log = logging.getLogger("registrar.db")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]

# SQLite calls the progress handler every this many virtual-machine steps: about every 0.3 to
# 1 ms of a scan. Each call takes the GIL, so far more often would make a wide read's thread
# contend with the event loop; far less, and a stop would come late.
PROGRESS_STEPS = 100_000


@dataclass
class StopCounts:
    """Statements (or queued jobs) stopped, by why: seen by /metrics."""

    budget: int = 0
    client_gone: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, reason: str) -> None:
        with self.lock:
            setattr(self, reason, getattr(self, reason) + 1)


class _Watch:
    """What a reader thread's progress handler checks: the job running now, and its deadline."""

    __slots__ = ("deadline", "future", "stopped")

    def __init__(self) -> None:
        self.future: asyncio.Future[Any] | None = None
        self.deadline = 0.0  # 0: no budget
        self.stopped: str | None = None

    def __call__(self) -> int:
        future = self.future
        if future is None:
            return 0
        if future.cancelled():  # a plain read of its state: safe from this thread
            self.stopped = "client_gone"
            return 1
        if self.deadline and time.monotonic() > self.deadline:
            self.stopped = "budget"
            return 1
        return 0


class ConnectionThreads:
    """`threads` threads, each with its own connection from `engine`, running jobs in order.

    With `transaction`, each job runs in a transaction (BEGIN as the engine's listener sets it,
    COMMIT on return, ROLLBACK on error); without, it runs with none (reads).
    """

    def __init__(
        self,
        engine: Engine,
        threads: int,
        name: str,
        *,
        transaction: bool,
        budget_ms: int | None = None,
        stops: StopCounts | None = None,
    ) -> None:
        self.engine = engine
        self.transaction = transaction
        # Readers only: the statement budget (0: none) and where stops are counted.
        self.budget_ms = budget_ms
        self.stops = stops if stops is not None else StopCounts()
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
        watch = _Watch() if self.budget_ms is not None else None
        try:
            while (job := self._jobs.get()) is not None:
                loop, future, fn, args = job
                if watch is not None and future.cancelled():
                    self.stops.add("client_gone")  # its caller left while it waited
                    continue
                try:
                    if connection is None:
                        connection = self.engine.connect()
                        if watch is not None:
                            dbapi = connection.connection.dbapi_connection
                            dbapi.set_progress_handler(watch, PROGRESS_STEPS)  # type: ignore[union-attr]
                    if watch is not None:
                        watch.future, watch.stopped = future, None
                        watch.deadline = (
                            time.monotonic() + self.budget_ms / 1000 if self.budget_ms else 0.0
                        )
                    value, error = self._run(connection, fn, args), None
                except BaseException as exc:
                    value, error = None, exc
                    if watch is not None and watch.stopped and isinstance(exc, OperationalError):
                        self.stops.add(watch.stopped)
                        if watch.stopped == "budget":
                            error = query_too_costly(self.budget_ms or 0)
                    if connection is not None and connection.invalidated:
                        connection.close()
                        connection = None
                finally:
                    if watch is not None:
                        watch.future = None
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
