"""`registrar load FILE [--replace] [--as-of TIME]`: import a SIS extract; every failure is one
line and exit 1."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from registrar.cli.common import fail, first_line, progress, run_with_db, settings
from registrar.core.clock import UTC_DATETIME, iso_z, parse_utc
from registrar.core.runtime import Runtime
from registrar.sis.service import LineError, LoadFailed, LoadResult, file_time
from registrar.sis.service import load as load_file


def _as_of(value: str | None, file: Path) -> dt.datetime:
    if value is None:
        return file_time(file)
    try:
        if UTC_DATETIME.fullmatch(value):
            return parse_utc(value)
    except ValueError:
        pass
    raise LoadFailed(
        f"--as-of must be an ISO 8601 UTC date-time like 2020-03-05T17:53:46Z, got {value!r}"
    )


def load(
    file: Annotated[Path, typer.Argument(help="SIS extract: JSON Lines, one enrollment per line")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Also remove enrollments absent from the extract")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="When the extract was taken from the SIS (ISO 8601 UTC; default: the file's "
            "modification time). Values written through the API after it are kept.",
        ),
    ] = None,
) -> None:
    """Import a SIS extract (upsert by id); a bad line stops the load and writes nothing."""
    s = settings()
    try:
        when = _as_of(as_of, file)
        size = max(file.stat().st_size, 1) if file.is_file() else 1
    except LoadFailed as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    bar = progress(of_bytes=True)
    task_id = bar.add_task("loading", total=size, lines=0) if bar else None

    def on_batch(lines: int, bytes_read: int) -> None:
        if bar is not None and task_id is not None:
            bar.update(task_id, completed=bytes_read, lines=lines)

    def on_phase(phase: str) -> None:
        if bar is not None and task_id is not None:
            bar.update(task_id, description=phase, completed=size)

    async def _load(runtime: Runtime) -> LoadResult:
        return await load_file(
            runtime.db, file, replace=replace, as_of=when, on_batch=on_batch, on_phase=on_phase
        )

    try:
        with bar if bar is not None else contextlib.nullcontext():
            result = run_with_db(s, _load)
    except (LineError, LoadFailed) as exc:
        message = str(exc)
        raise fail(
            message if message.startswith("cannot read") else f"{message}; nothing was loaded"
        ) from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}; nothing was loaded") from None
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        # The transaction never committed, so the database is as it was.
        raise fail("interrupted; nothing was loaded") from None
    except Exception as exc:  # a database error: still one line, never a traceback
        raise fail(f"load failed, nothing was loaded: {first_line(exc)}") from None
    typer.echo(
        f"loaded {result.lines} enrollments from {file} (taken {iso_z(result.as_of)}) in "
        f"{result.seconds:.1f} s: {result.summary()}"
    )
    typer.echo(
        f"people: {result.people} in the extract ({result.people_changed} added or changed), "
        f"sections: {result.sections}, terms: {result.terms}"
    )
