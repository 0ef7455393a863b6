"""`registrar demo`: a believable university through the real load path, and a ready API key."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from registrar.cli.common import fail, first_line, progress, run_with_db, settings
from registrar.core.runtime import Runtime
from registrar.sis.demo import Demo, load_demo


def demo(
    enrollments: Annotated[int, typer.Option(help="How many enrollments to generate")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed, for repeatable data")] = 2020,
    if_empty: Annotated[
        bool,
        typer.Option("--if-empty", help="Only fill an empty database (always a new key)"),
    ] = False,
) -> None:
    """Fill the database with a believable university and a demo service account."""
    if enrollments < 1:
        raise fail("--enrollments must be at least 1")
    s = settings()
    bar = progress()
    task_id = bar.add_task("generating", total=enrollments) if bar else None

    def on_batch(lines: int) -> None:
        if bar is not None and task_id is not None:
            bar.update(task_id, completed=lines)

    def on_phase(phase: str) -> None:
        if bar is not None and task_id is not None:
            bar.update(task_id, description=phase)

    async def _demo(runtime: Runtime) -> Demo:
        return await load_demo(
            runtime.db,
            runtime.settings,
            enrollments=enrollments,
            seed=seed,
            if_empty=if_empty,
            on_batch=on_batch,
            on_phase=on_phase,
        )

    try:
        with bar if bar is not None else contextlib.nullcontext():
            done = run_with_db(s, _demo)
    except typer.Exit:
        raise
    except Exception as exc:  # one line, never a traceback (a generated line is always valid)
        raise fail(f"demo failed, nothing was loaded: {first_line(exc)}") from None
    result = done.load
    if result is None:
        typer.echo("the database already holds enrollments: demo data left as it is")
    else:
        typer.echo(
            f"demo university: {result.lines} enrollments of {result.people} people in "
            f"{result.sections} sections over {result.terms} terms ({result.summary()}), "
            f"{result.seconds:.1f} s"
        )
    typer.echo(f"service account {done.sub!r} has every scope; its API key (shown only now):")
    typer.echo(f"KEY={done.key}")
    typer.echo(
        'TOKEN=$(curl -s -X POST -H "Authorization: $KEY" http://127.0.0.1:8000/api/jwt '
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"jwt\"])')"
    )
    typer.echo(
        'curl -s -H "Authorization: Bearer $TOKEN" '
        "'http://127.0.0.1:8000/api/academic/enrollments?is_in_session=true&pagesize=5'"
    )
