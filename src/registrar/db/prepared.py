"""Prepared reads: a repository's one-statement read, built once, that PostgreSQL runs straight
on asyncpg as a prepared statement.

A `PreparedRead` is still a plain function over a Connection (the rule in db/__init__.py): on
SQLite `Database.read` runs it on a reader thread like any other. On PostgreSQL `Database.read`
runs it on an asyncpg pool of its own instead (`PostgresReads`): the statement is compiled once,
asyncpg prepares it once per connection, and a read is one round trip (Bind/Execute/Sync) with no
`run_sync` hop, no SQLAlchemy execution context and no pool reset query. Issue 15: GET by id on
PostgreSQL answered 1,357 req/s through `run_sync` where SQLite answered 2,278; README
"Performance" has the figures after.

What it may hold: one SELECT built once at import (never per request: each is compiled once and
kept), with `bindparam`s for plain values (text, numbers, booleans: asyncpg binds them as they
are, with no SQLAlchemy type processing, so no bind parameter of a TypeDecorator type). Rows come
back as named tuples with the statement's column names; asyncpg's own types are the ones
SQLAlchemy would give (aware UTC datetimes for `timestamptz`, float, bool).
"""

from __future__ import annotations

import asyncio
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Select


@dataclass(frozen=True, eq=False)
class PreparedRead:
    """`plan(*args)` picks one of the statements built once and its parameters; `first`: the
    read answers its first row or None, else the list of rows."""

    plan: Callable[..., tuple[Select[Any], Mapping[str, Any]]]
    first: bool = False

    def __call__(self, connection: Connection, *args: Any) -> Any:
        statement, params = self.plan(*args)
        if connection.dialect.name != "sqlite":
            result = connection.execute(statement, params)
            return result.first() if self.first else list(result.all())
        # SQLite: the compiled text on the stdlib driver itself, and only the columns that need
        # it converted (timestamps, booleans): SQLAlchemy's execution and row processing cost a
        # selective page of 30 rows 0.7 ms where SQLite's own work was 0.6 ms.
        compiled = _SQLITE.get(connection.dialect, statement)
        values = [params[name] for name in compiled.names]
        cursor = connection.connection.driver_connection.execute(compiled.sql, values)  # type: ignore[union-attr]
        rows = [compiled.make(record) for record in cursor.fetchall()]
        if self.first:
            return rows[0] if rows else None
        return rows


@dataclass(frozen=True)
class _Compiled:
    statement: Select[Any]  # kept, so that its id is never another statement's
    sql: str
    names: tuple[str, ...]  # the bind parameters, in the order the SQL takes them
    row: Any  # the named tuple class of its rows
    processors: tuple[Callable[[Any], Any] | None, ...] | None  # None: values as they come

    def make(self, record: Any) -> Any:
        if self.processors is None:
            return self.row._make(record)
        return self.row._make(
            [
                v if p is None or v is None else p(v)
                for p, v in zip(self.processors, record, strict=True)
            ]
        )


class _Statements:
    """Statements compiled once for one dialect, by identity (they are built once). Bounded."""

    def __init__(self, *, process: bool) -> None:
        self.process = process
        self._compiled: dict[int, _Compiled] = {}

    def get(self, dialect: Dialect, statement: Select[Any]) -> _Compiled:
        found = self._compiled.get(id(statement))
        if found is None or found.statement is not statement:
            compiled = statement.compile(dialect=dialect)
            names = tuple(compiled.positiontup or ())
            columns = list(statement.selected_columns)
            row = namedtuple("PreparedRow", [c.key for c in columns])  # type: ignore[misc]
            processors = None
            if self.process:
                processors = tuple(c.type._cached_result_processor(dialect, None) for c in columns)
            found = _Compiled(statement, compiled.string, names, row, processors)
            if len(self._compiled) >= 1024:
                self._compiled.clear()
            self._compiled[id(statement)] = found
        return found


# SQLite's driver answers text for timestamps and integers for booleans: converted as the
# columns' types say. asyncpg answers the types themselves.
_SQLITE = _Statements(process=True)


class PostgresReads:
    """An asyncpg pool for prepared reads (created on first use, inside the server's loop)."""

    def __init__(self, dsn: str, dialect: Dialect, size: int) -> None:
        self.dsn = dsn
        self.dialect = dialect
        self.size = size
        self._pool: Any = None
        self._lock: asyncio.Lock | None = None
        self._statements = _Statements(process=False)

    async def _get_pool(self) -> Any:
        if self._pool is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=1,
                        max_size=self.size,
                        max_inactive_connection_lifetime=300,
                        # Prepared reads change no session state: no reset query (a round
                        # trip) each time a connection goes back.
                        reset=_keep_session,
                    )
        return self._pool

    async def run(self, read: PreparedRead, *args: Any) -> Any:
        statement, params = read.plan(*args)
        compiled = self._statements.get(self.dialect, statement)
        values = [params[name] for name in compiled.names]
        pool = await self._get_pool()
        if read.first:
            record = await pool.fetchrow(compiled.sql, *values)
            return None if record is None else compiled.make(record)
        return [compiled.make(r) for r in await pool.fetch(compiled.sql, *values)]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _keep_session(_connection: Any) -> None:
    return None
