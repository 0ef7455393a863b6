"""Engine, sessions and the SQLite pragmas.

Operators write plain URLs (`sqlite:////abs/path.db`, `postgresql://user@host/db`); the service
picks its own async driver. On SQLite every connection gets WAL, a busy timeout and foreign keys,
and a write transaction starts with `BEGIN IMMEDIATE` so that two writers queue on the busy
timeout instead of failing with "database is locked" when a deferred read transaction tries to
upgrade.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from registrar.config import Settings
from registrar.read_cache import MISSING, ReadCache, WalChangeCounter
from registrar.sqlite_threads import ConnectionThreads

P = ParamSpec("P")
T = TypeVar("T")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored and returned as aware UTC, on SQLite too (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        # SQLite compares timestamps as text: store them naive in one fixed format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


def async_url(url: str) -> str:
    """Map an operator's plain URL to the async driver the service uses."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL scheme: {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@dataclass
class Database:
    """The engine plus the two kinds of session the service uses, and the hot-path reader."""

    engine: AsyncEngine
    writer_engine: AsyncEngine
    read_sessions: async_sessionmaker[AsyncSession]
    write_sessions: async_sessionmaker[AsyncSession]
    reader_engine: AsyncEngine
    # SQLite only: plain (sync) connections on threads of their own. See `read` and `write`.
    sqlite_readers: ConnectionThreads | None = None
    sqlite_writer: ConnectionThreads | None = None
    read_cache: ReadCache | None = None

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
        On PostgreSQL the same function runs on an asyncpg connection through `run_sync`. Reads
        take no transaction.
        """
        if self.sqlite_readers is not None:
            call = functools.partial(query, **kwargs) if kwargs else query
            result: T = await self.sqlite_readers.submit(call, args)
            return result
        async with self.reader_engine.connect() as connection:
            return await connection.run_sync(query, *args, **kwargs)

    async def read_cached(self, query: Callable[..., T | None], *args: Hashable) -> T | None:
        """`read(query, *args)` remembered until the database changes (SQLite, read_cache.py).

        For point reads whose result depends on nothing but `args` (which must say everything
        the query depends on, FERPA included). None ("not found") is never remembered.
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
        key = (query, *args)
        if token is not None:
            found = cache.get(key, token)
            if found is not MISSING:
                return cast(T, found)
        value = await self.read(query, *args)
        if token is not None and value is not None:
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
        """
        if self.sqlite_writer is not None:
            call = functools.partial(work, **kwargs) if kwargs else work
            result: T = await self.sqlite_writer.submit(call, args)
            return result
        async with self.writer_engine.begin() as connection:
            return await connection.run_sync(work, *args, **kwargs)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        async with self.read_sessions() as session:
            yield session

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on any error."""
        async with self.write_sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_cache is not None:
            self.read_cache.close()
        for threads in (self.sqlite_readers, self.sqlite_writer):
            if threads is not None:
                await asyncio.to_thread(threads.close)
                threads.engine.dispose()


def _install_sqlite_pragmas(
    sync_engine: Engine, busy_timeout_ms: int, synchronous: str, begin: str | None = "DEFERRED"
) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN, so we can make it IMMEDIATE for writes.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode: a commit survives the process being killed, not a power cut;
        # FULL adds an fsync per commit (REGISTRAR_SQLITE_SYNCHRONOUS).
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        # LIKE is case-sensitive on PostgreSQL; make wildcard filters mean the same here.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("registrar_begin", begin)
        if mode is not None:  # None: a read, which needs no transaction
            conn.exec_driver_sql(f"BEGIN {mode}")


def create_database(settings: Settings) -> Database:
    url = async_url(settings.database_url)
    kwargs: dict[str, Any] = {"pool_size": settings.db_pool_size}
    if is_sqlite(url):
        # A fixed set of connections: each aiosqlite connection is a thread plus pragmas, too
        # dear to open and close per request as overflow connections would be. Every aiosqlite
        # call is a hop to that thread, so spend as few as possible: no rollback when a
        # connection goes back to the pool (SQLAlchemy already rolls back a transaction it
        # began, and reads begin none).
        kwargs.update(
            max_overflow=0,
            pool_timeout=30,
            pool_reset_on_return=None,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
        )
    else:
        kwargs.update(
            max_overflow=settings.db_max_overflow,
            pool_recycle=1800,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
    engine = create_async_engine(url, **kwargs)
    writer_engine = engine
    # Reads run without a transaction: no BEGIN/ROLLBACK round trips around a lookup. A
    # collection's count and page may see different moments; the found set's snapshot key
    # bounds both.
    sqlite_readers = sqlite_writer = None
    read_cache = None
    if engine.dialect.name == "sqlite":
        _install_sqlite_pragmas(
            engine.sync_engine, settings.sqlite_busy_timeout_ms, settings.sqlite_synchronous
        )
        writer_engine = engine.execution_options(registrar_begin="IMMEDIATE")
        # The driver is already in autocommit mode (see _on_connect); switching isolation
        # levels per checkout would cost two more thread hops.
        reader_engine = engine.execution_options(registrar_begin=None)
        # Database.read and Database.write: stdlib connections on threads of their own. One
        # writer: SQLite has one at a time, and queueing in order beats its busy handler.
        sqlite_readers = ConnectionThreads(
            _plain_sqlite_engine(settings, settings.db_pool_size, begin=None),
            settings.db_pool_size,
            "registrar-read",
            transaction=False,
        )
        sqlite_writer = ConnectionThreads(
            _plain_sqlite_engine(settings, 1, begin="IMMEDIATE"),
            1,
            "registrar-write",
            transaction=True,
        )
        database = make_url(settings.database_url).database
        if settings.read_cache_entries > 0 and database and database != ":memory:":
            read_cache = ReadCache(WalChangeCounter(database), settings.read_cache_entries)
    else:
        reader_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return Database(
        engine=engine,
        writer_engine=writer_engine,
        read_sessions=async_sessionmaker(reader_engine, expire_on_commit=False),
        write_sessions=async_sessionmaker(writer_engine, expire_on_commit=False),
        reader_engine=reader_engine,
        sqlite_readers=sqlite_readers,
        sqlite_writer=sqlite_writer,
        read_cache=read_cache,
    )


def _plain_sqlite_engine(settings: Settings, connections: int, *, begin: str | None) -> Engine:
    """A stdlib-driver engine on the same file, with the same pragmas (see Database.read)."""
    engine = create_engine(
        make_url(settings.database_url).set(drivername="sqlite+pysqlite"),
        pool_size=connections,
        max_overflow=0,
        pool_timeout=30,
        # A read begins no transaction and a write ends in COMMIT or ROLLBACK: nothing to reset.
        pool_reset_on_return=None,
        connect_args={
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
            "check_same_thread": False,
        },
    )
    _install_sqlite_pragmas(
        engine, settings.sqlite_busy_timeout_ms, settings.sqlite_synchronous, begin
    )
    return engine
