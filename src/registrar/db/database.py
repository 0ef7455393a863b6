"""The process's database (`Database`: how code reaches it) and the clock processes agree on."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from registrar.core.clock import utcnow
from registrar.core.problems import query_too_costly
from registrar.db.prepared import PostgresReads, PreparedRead
from registrar.db.read_cache import MISSING, ReadCache
from registrar.db.sqlite_threads import ConnectionThreads, StopCounts
from registrar.db.write_health import WriteHealth, storage_failure

# PostgreSQL's SQLSTATE for a statement stopped by statement_timeout (or a cancel request).
QUERY_CANCELED = "57014"

P = ParamSpec("P")
T = TypeVar("T")


def database_now(connection: Connection) -> dt.datetime:
    """The clock every process agrees on, for leases and for ordering requests.

    On PostgreSQL that is the database's clock: API and worker processes on different machines
    may disagree by seconds, which would reorder requests and reclaim live leases. On SQLite every
    process runs on the machine that holds the file, so its own clock is the shared one.
    """
    if connection.dialect.name == "postgresql":
        value = connection.scalar(text("SELECT clock_timestamp()"))
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC)
    return utcnow()


def ping(connection: Connection) -> None:
    """The cheapest statement that proves the database answers (GET /health)."""
    connection.execute(text("SELECT 1"))


@dataclass
class Database:
    """How the process reaches its database: `read`, `read_cached` and `write` run plain functions
    over a Connection (the rule in db/__init__.py); `bulk` is the SIS load's way."""

    engine: AsyncEngine
    writer_engine: AsyncEngine
    reader_engine: AsyncEngine
    # SQLite only: plain (sync) connections on threads of their own. See `read` and `write`.
    sqlite_readers: ConnectionThreads | None = None
    sqlite_writer: ConnectionThreads | None = None
    read_cache: ReadCache | None = None
    # PostgreSQL only: where `PreparedRead`s run (db/prepared.py).
    postgres_reads: PostgresReads | None = None
    # SQLite: the database file (db/notices.py watches its WAL-index header); None otherwise.
    sqlite_path: str | None = None
    # Whether storage is refusing this process's writes (full disk...): db/write_health.py.
    write_health: WriteHealth = field(default_factory=WriteHealth)
    # The wide lane (`read_wide`): reader threads of its own on SQLite, a pool of its own with a
    # statement_timeout on PostgreSQL, and at most `wide_at_once` of its reads at a time.
    sqlite_wide_readers: ConnectionThreads | None = None
    wide_engine: AsyncEngine | None = None
    wide_at_once: int = 1
    # REGISTRAR_STATEMENT_BUDGET_MS (0: none), and the reads stopped for it or for a caller gone.
    budget_ms: int = 0
    stops: StopCounts = field(default_factory=StopCounts)
    wide_in_flight: int = 0
    _wide_gate: asyncio.Semaphore | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def read(
        self, query: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `query(connection, ...)`, a read written against a plain Connection, in one hop.

        The API's hot reads (an enrollment by id, a page of a collection) go through here. Through
        an AsyncSession on aiosqlite a lookup costs five hops to the driver's thread plus the ORM
        session's bookkeeping, about 0.5 ms of CPU; run whole on a reader thread with the stdlib
        driver it costs about 0.13 ms, and the event loop waits once (see sqlite_threads.py).
        On PostgreSQL the same function runs on an asyncpg connection through `run_sync`, except
        a `PreparedRead`, which runs as a prepared statement on asyncpg itself (db/prepared.py).
        Reads take no transaction.
        """
        if self.sqlite_readers is not None:
            call = functools.partial(query, **kwargs) if kwargs else query
            result: T = await self.sqlite_readers.submit(call, args)
            return result
        if self.postgres_reads is not None and isinstance(query, PreparedRead):
            prepared: T = await self.postgres_reads.run(query, *args)
            return prepared
        return await self._read_postgresql(self.reader_engine, query, *args, **kwargs)

    async def read_wide(
        self, query: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`read`, on the wide lane: for a read that is not selective (paging/filters.py), which
        may scan much of a table.

        Wide reads cannot starve the others (issue 9 item 1: 8 wide requests stalled every read
        for over two minutes): at most `wide_at_once` run at a time per process, on connections
        of their own (SQLite reader threads, a PostgreSQL pool), so the selective reads' readers
        are never theirs; the rest wait here, where a caller that goes away stops waiting. The
        statement budget stops one that runs too long (`query_too_costly`), and a cancelled
        caller stops its statement: SQLite's progress handler (sqlite_threads.py), asyncpg's
        cancel request on PostgreSQL.
        """
        if self._wide_gate is None:
            self._wide_gate = asyncio.Semaphore(self.wide_at_once)
        async with self._wide_gate:
            self.wide_in_flight += 1
            try:
                if self.sqlite_wide_readers is not None:
                    call = functools.partial(query, **kwargs) if kwargs else query
                    result: T = await self.sqlite_wide_readers.submit(call, args)
                    return result
                return await self._read_postgresql(
                    self.wide_engine or self.reader_engine, query, *args, **kwargs
                )
            finally:
                self.wide_in_flight -= 1

    async def _read_postgresql(
        self,
        engine: AsyncEngine,
        query: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(query, *args, **kwargs)
        except asyncio.CancelledError:
            # asyncpg sends PostgreSQL a cancel request for the running statement.
            self.stops.add("client_gone")
            raise
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
                self.stops.add("budget")
                raise query_too_costly(self.budget_ms) from None
            raise

    async def read_cached(
        self, query: Callable[..., T | None], *args: Any, cache_key: Hashable = None
    ) -> T | None:
        """`read(query, *args)` remembered until the database changes (SQLite, read_cache.py).

        For point reads (and a selective page: paging/pages.py) whose result depends on nothing
        but `args`, or on nothing but `cache_key` when given (either must say everything the
        query depends on, FERPA included). Nothing empty (None: "not found", or an empty page)
        is remembered.
        """
        cache = self.read_cache
        if cache is None:
            return await self.read(query, *args)
        if cache.attached is None:
            cache.attached = False  # concurrent first requests read uncached meanwhile
            cache.attached = await asyncio.to_thread(cache.counter.attach)
        if not cache.attached:
            return await self.read(query, *args)
        # Before the read, never after (read_cache.py says why).
        token = cache.counter.token()
        key = (query, *args) if cache_key is None else (query, cache_key)
        if token is not None:
            found = cache.get(key, token)
            if found is not MISSING:
                return cast(T, found)
        value = await self.read(query, *args)
        if token is not None and value:
            cache.put(key, token, value)
        return value

    async def write(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `work(connection, ...)` in one transaction: committed when it returns, rolled back
        if it raises. The task queue's writes (new tasks, claims, handlers, finishes) go here.

        SQLite has one writer at a time, so a process keeps one writer thread with one
        connection (`BEGIN IMMEDIATE`): writes queue in order on that thread instead of meeting
        in SQLite's busy handler, and a batch of statements costs one hop. PostgreSQL runs the
        same function in a transaction on an asyncpg connection through `run_sync`; any number
        at once.

        On SQLite, cancelling the caller does not stop `work` (a thread cannot be interrupted):
        it still commits or rolls back whole. Callers that must stop one check a flag in it.

        A write that storage refuses (full disk, read-only, I/O error) is noted in
        `write_health` (db/write_health.py).
        """
        try:
            if self.sqlite_writer is not None:
                call = functools.partial(work, **kwargs) if kwargs else work
                result: T = await self.sqlite_writer.submit(call, args)
            else:
                async with self.writer_engine.begin() as connection:
                    result = await connection.run_sync(work, *args, **kwargs)
        except Exception as exc:
            reason = storage_failure(exc)
            if reason is not None:
                self.write_health.failed(reason)
            raise
        return result

    @asynccontextmanager
    async def bulk(self) -> AsyncIterator[AsyncConnection]:
        """An AsyncConnection in one write transaction (committed when the block ends, rolled back
        if it raises): for the SIS load alone, which streams batches (see sis/repository.py)."""
        async with self.writer_engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def bulk_staged(self) -> AsyncIterator[AsyncConnection]:
        """SQLite: an AsyncConnection in no transaction yet, for the SIS refresh, which reads and
        stages in DEFERRED transactions (no write lock: reads of the main database and writes of
        TEMP tables only) and takes the write lock (`BEGIN IMMEDIATE`, sis/repository.py
        `Stage.begin_write`) only to apply what it staged. Rolled back if the block raises."""
        async with self.engine.connect() as connection:
            yield connection

    async def dispose(self) -> None:
        if self.postgres_reads is not None:
            await self.postgres_reads.close()
        await self.engine.dispose()
        if self.wide_engine is not None:
            await self.wide_engine.dispose()
        if self.read_cache is not None:
            self.read_cache.close()
        for threads in (self.sqlite_readers, self.sqlite_wide_readers, self.sqlite_writer):
            if threads is not None:
                await asyncio.to_thread(threads.close)
                threads.engine.dispose()
