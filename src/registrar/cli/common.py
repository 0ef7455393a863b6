"""What every command shares: its settings, the database migrated and opened, one-line failures and
progress bars. The CLI is the only part of registrar that prints, exits or knows Typer and rich:
everything it calls returns results or raises, and the commands turn failures into `error: ...`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.db.migrate import upgrade

T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr and a non-zero exit: the CLI's only way to report bad input.

    Plain echo, not rich: rich wraps at the console width (80 columns in a pipe), which would split
    the one line that scripts and tests read.
    """
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


def first_line(exc: BaseException) -> str:
    """An exception as one line (a driver's message may run to many), never empty."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the bad variable
        raise fail(f"bad configuration: {exc}".splitlines()[0]) from None


def migrate_or_fail(s: Settings, failure: str = "cannot open the database") -> None:
    """Apply the migrations (every command that touches the database does, first)."""
    try:
        upgrade(s.database_url)
    except Exception as exc:
        raise fail(f"{failure}: {exc}".splitlines()[0]) from None


def run_with_db(s: Settings, fn: Callable[[Runtime], Awaitable[T]]) -> T:
    """Migrate, then run `fn(runtime)` on a fresh event loop."""
    migrate_or_fail(s)

    async def _main() -> T:
        runtime = Runtime.build(s)
        try:
            return await fn(runtime)
        finally:
            await runtime.close()

    return asyncio.run(_main())


def progress(*, of_bytes: bool = False) -> Progress | None:
    """A progress bar on stderr when it is a terminal; nothing in pipes, logs and tests.

    A file's progress is counted in bytes read (the line count is unknown until the end), shown as
    a percentage with the lines read so far."""
    if not sys.stderr.isatty():
        return None
    amount = (
        (TaskProgressColumn(), TextColumn("{task.fields[lines]:,} lines"))
        if of_bytes
        else (MofNCompleteColumn(),)
    )
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *amount,
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
