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
        result = connection.execute(statement, params)
        return result.first() if self.first else list(result.all())


@dataclass(frozen=True)
class _Compiled:
    statement: Select[Any]  # kept, so that its id is never another statement's
    sql: str
    names: tuple[str, ...]  # the bind parameters, in $1, $2... order
    row: Any  # the named tuple class of its rows


class PostgresReads:
    """An asyncpg pool for prepared reads (created on first use, inside the server's loop)."""

    def __init__(self, dsn: str, dialect: Dialect, size: int) -> None:
        self.dsn = dsn
        self.dialect = dialect
        self.size = size
        self._pool: Any = None
        self._lock: asyncio.Lock | None = None
        self._compiled: dict[int, _Compiled] = {}

    def _compile(self, statement: Select[Any]) -> _Compiled:
        found = self._compiled.get(id(statement))
        if found is None or found.statement is not statement:
            compiled = statement.compile(dialect=self.dialect)
            names = tuple(compiled.positiontup or ())
            row = namedtuple("PreparedRow", list(statement.selected_columns.keys()))  # type: ignore[misc]
            found = _Compiled(statement, compiled.string, names, row)
            # Keyed by identity: statements are built once. Bounded all the same.
            if len(self._compiled) >= 1024:
                self._compiled.clear()
            self._compiled[id(statement)] = found
        return found

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
        compiled = self._compile(statement)
        values = [params[name] for name in compiled.names]
        pool = await self._get_pool()
        if read.first:
            record = await pool.fetchrow(compiled.sql, *values)
            return None if record is None else compiled.row._make(record)
        return [compiled.row._make(r) for r in await pool.fetch(compiled.sql, *values)]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _keep_session(_connection: Any) -> None:
    return None
