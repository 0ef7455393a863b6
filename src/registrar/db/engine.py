"""Engines from an operator's plain URL: the drivers, the pools and the SQLite pragmas.

Operators write plain URLs (`sqlite:////abs/path.db`, `postgresql://user@host/db`); the service
picks its own drivers. On SQLite every connection gets WAL, a busy timeout and foreign keys, and a
write transaction starts with `BEGIN IMMEDIATE` so that two writers queue on the busy timeout
instead of failing with "database is locked" when a deferred read transaction tries to upgrade.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.db.prepared import PostgresReads
from registrar.db.read_cache import ReadCache, WalChangeCounter
from registrar.db.sqlite_threads import ConnectionThreads, StopCounts
from registrar.db.statement_cache import PREPARED_PER_CONNECTION, CompiledStatements


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


def asyncpg_dsn(url: str) -> str:
    """The URL as asyncpg itself takes it (for what runs on asyncpg directly: the LISTEN
    connection, the shared rate-limit counter)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


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
    kwargs: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        # Bounded by the size of what it holds, not only by a count (db/statement_cache.py).
        "execution_options": {"compiled_cache": CompiledStatements()},
    }
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
            connect_args={
                "timeout": settings.sqlite_busy_timeout_ms / 1000,
                "cached_statements": PREPARED_PER_CONNECTION,
            },
        )
    else:
        kwargs.update(
            connect_args={"prepared_statement_cache_size": PREPARED_PER_CONNECTION},
            max_overflow=settings.db_max_overflow,
            pool_recycle=1800,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
    engine = create_async_engine(url, **kwargs)
    writer_engine = engine
    # Reads run without a transaction: no BEGIN/ROLLBACK round trips around a lookup. A
    # collection's count and page may see different moments; the found set's snapshot key
    # bounds both.
    sqlite_readers = sqlite_writer = sqlite_wide_readers = None
    wide_engine = None
    read_cache = None
    stops = StopCounts()
    budget = settings.statement_budget_ms
    postgres_reads = None
    sqlite_path = None
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
        def readers(threads: int, name: str) -> ConnectionThreads:
            return ConnectionThreads(
                _plain_sqlite_engine(settings, threads, begin=None),
                threads,
                name,
                transaction=False,
                budget_ms=budget,
                stops=stops,
            )

        sqlite_readers = readers(settings.db_pool_size, "registrar-read")
        # The wide lane (Database.read_wide): threads of its own, so that wide reads never
        # occupy the readers selective ones need.
        sqlite_wide_readers = readers(settings.wide_reads_at_once, "registrar-read-wide")
        sqlite_writer = ConnectionThreads(
            _plain_sqlite_engine(settings, 1, begin="IMMEDIATE"),
            1,
            "registrar-write",
            transaction=True,
        )
        database = make_url(settings.database_url).database
        if database and database != ":memory:":
            sqlite_path = database
        if settings.read_cache_entries > 0 and sqlite_path:
            read_cache = ReadCache(WalChangeCounter(sqlite_path), settings.read_cache_entries)
    else:
        reader_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # The wide lane (Database.read_wide): a pool of its own, opened only when used, whose
        # sessions stop any statement after the budget (PostgreSQL cancels it server-side).
        wide_engine = create_async_engine(
            url,
            pool_size=settings.wide_reads_at_once,
            max_overflow=0,
            pool_recycle=1800,
            pool_pre_ping=settings.db_pool_pre_ping,
            isolation_level="AUTOCOMMIT",
            # Bounded per-shape caches, as the main engine's (db/statement_cache.py).
            execution_options={"compiled_cache": CompiledStatements()},
            connect_args={
                "server_settings": {"statement_timeout": str(budget)},
                "prepared_statement_cache_size": PREPARED_PER_CONNECTION,
            },
        )
        postgres_reads = PostgresReads(
            asyncpg_dsn(settings.database_url), engine.dialect, settings.db_pool_size
        )
    return Database(
        engine=engine,
        writer_engine=writer_engine,
        reader_engine=reader_engine,
        sqlite_readers=sqlite_readers,
        sqlite_writer=sqlite_writer,
        read_cache=read_cache,
        sqlite_wide_readers=sqlite_wide_readers,
        wide_engine=wide_engine,
        wide_at_once=settings.wide_reads_at_once,
        budget_ms=budget,
        stops=stops,
        postgres_reads=postgres_reads,
        sqlite_path=sqlite_path,
    )


def _plain_sqlite_engine(settings: Settings, connections: int, *, begin: str | None) -> Engine:
    """A stdlib-driver engine on the same file, with the same pragmas (see Database.read)."""
    engine = create_engine(
        make_url(settings.database_url).set(drivername="sqlite+pysqlite"),
        pool_size=connections,
        execution_options={"compiled_cache": CompiledStatements()},
        max_overflow=0,
        pool_timeout=30,
        # A read begins no transaction and a write ends in COMMIT or ROLLBACK: nothing to reset.
        pool_reset_on_return=None,
        connect_args={
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
            "check_same_thread": False,
            "cached_statements": PREPARED_PER_CONNECTION,
        },
    )
    _install_sqlite_pragmas(
        engine, settings.sqlite_busy_timeout_ms, settings.sqlite_synchronous, begin
    )
    return engine
