"""Databases for tests: SQLite by default; set REGISTRAR_TEST_POSTGRES_URL (an admin URL such as
postgresql://postgres@127.0.0.1:5432/postgres) to run on PostgreSQL, a fresh database per module.

Tests reach the database the way the service does (db/__init__.py): plain functions over a
Connection, through `read` and `write` here, each on a fresh Database of its own (the app's pools
belong to its own event loop).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import make_url

from registrar.core.runtime import Runtime
from registrar.core.settings import Settings

T = TypeVar("T")

POSTGRES_ADMIN_URL = os.environ.get("REGISTRAR_TEST_POSTGRES_URL")


def backend() -> str:
    return "postgresql" if POSTGRES_ADMIN_URL else "sqlite"


async def pg_admin(sql: str, admin_url: str | None = None) -> None:
    import asyncpg

    url = admin_url or POSTGRES_ADMIN_URL
    assert url
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def new_database_url(tmp_dir: Path) -> tuple[str, Callable[[], None]]:
    """A fresh, empty database and the function that removes it."""
    if not POSTGRES_ADMIN_URL:
        path = tmp_dir / f"registrar-{secrets.token_hex(4)}.db"
        return f"sqlite:///{path}", lambda: None
    name = f"registrar_test_{secrets.token_hex(6)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return url, drop


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "worker_poll_seconds": 0.05,
        "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def with_runtime(settings: Settings, fn: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run `fn(runtime)` on a fresh event loop and runtime (the app's loop lives in another
    thread)."""

    async def _main() -> T:
        runtime = Runtime.build(settings)
        try:
            return await fn(runtime)
        finally:
            await runtime.close()

    return asyncio.run(_main())


def read(settings: Settings, fn: Callable[..., T], *args: Any) -> T:
    """`fn(connection, *args)` through Database.read."""

    async def _read(runtime: Runtime) -> T:
        return await runtime.db.read(fn, *args)

    return with_runtime(settings, _read)


def write(settings: Settings, fn: Callable[..., T], *args: Any) -> T:
    """`fn(connection, *args)` through Database.write: one transaction."""

    async def _write(runtime: Runtime) -> T:
        return await runtime.db.write(fn, *args)

    return with_runtime(settings, _write)


def execute(settings: Settings, statement: Executable, params: Any = None) -> list[Any]:
    """One statement in a transaction of its own; its rows as tuples (none for DML)."""

    def run(connection: Connection) -> list[Any]:
        result = connection.execute(statement, params)
        return [tuple(r) for r in result.all()] if result.returns_rows else []

    return write(settings, run)
