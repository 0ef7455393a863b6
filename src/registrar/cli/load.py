"""`registrar load FILE [--replace]`: import a SIS extract; every failure is one line and exit 1."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from registrar.cli.common import fail, first_line, progress, run_with_db, settings
from registrar.core.runtime import Runtime
from registrar.sis.extract import ExtractReader, open_extract
from registrar.sis.records import LineError
from registrar.sis.service import LoadFailed, LoadResult, load_records


def load(
    file: Annotated[Path, typer.Argument(help="SIS extract: JSON Lines, one enrollment per line")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Also remove enrollments absent from the extract")
    ] = False,
) -> None:
    """Import a SIS extract (upsert by id); a bad line stops the load and writes nothing."""
    s = settings()
    try:
        handle = open_extract(file)
    except LoadFailed as exc:
        raise fail(str(exc)) from None
    with handle:
        reader = ExtractReader(handle)
        size = max(file.stat().st_size, 1)
        bar = progress(of_bytes=True)
        task_id = bar.add_task("loading", total=size, lines=0) if bar else None

        def on_batch(lines: int) -> None:
            if bar is not None and task_id is not None:
                bar.update(task_id, completed=reader.bytes_read, lines=lines)

        def on_phase(phase: str) -> None:
            if bar is not None and task_id is not None:
                bar.update(task_id, description=phase, completed=size)

        async def _load(runtime: Runtime) -> LoadResult:
            return await load_records(
                runtime.db, reader, replace=replace, on_batch=on_batch, on_phase=on_phase
            )

        try:
            with bar if bar is not None else contextlib.nullcontext():
                result = run_with_db(s, _load)
        except (LineError, LoadFailed) as exc:
            raise fail(f"{exc}; nothing was loaded") from None
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
        f"loaded {result.lines} enrollments from {file} in {result.seconds:.1f} s: "
        f"{result.summary()}"
    )
    typer.echo(
        f"people: {result.people} in the extract ({result.people_changed} added or changed), "
        f"sections: {result.sections}, terms: {result.terms}"
    )
