"""`registrar demo`: a believable university through the real load path, and a ready API key."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from registrar.cli.common import fail, first_line, progress, run_with_db, settings
from registrar.core.runtime import Runtime
from registrar.sis.demo import Demo, load_demo, minimum_enrollments


def demo(
    enrollments: Annotated[int, typer.Option(help="How many enrollments to generate")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed, for repeatable data")] = 2020,
    if_empty: Annotated[
        bool,
        typer.Option(
            "--if-empty",
            help="Generate only into an empty database (the seeds' own records and sample "
            "tasks are made sure of either way)",
        ),
    ] = False,
    url: Annotated[
        str,
        typer.Option(help="Where the API will be served: the printed curl lines use it"),
    ] = "http://127.0.0.1:8000",
    key_file: Annotated[
        Path | None,
        typer.Option(
            help="Keep the demo key in this file (mode 600): a rerun keeps using the key saved "
            "there while it works, instead of making a new one"
        ),
    ] = None,
) -> None:
    """Fill the database with a believable university and a demo service account."""
    least = minimum_enrollments()
    if enrollments < least:
        raise fail(f"--enrollments must be at least {least} (the seeds' own records)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise fail(f"--url must be an http(s) URL such as http://127.0.0.1:8000, not {url!r}")
    base = url.rstrip("/")
    saved = _read_key(key_file)
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
            base_url=base,
            if_empty=if_empty,
            keep_key=saved,
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
        typer.echo(
            "the database already holds enrollments: generated data left as it is "
            "(the seeds' records and sample tasks are there)"
        )
    else:
        typer.echo(
            f"demo university: {result.lines} enrollments of {result.people} people in "
            f"{result.sections} sections over {result.terms} terms ({result.summary()}), "
            f"{done.petitions} petitions, {result.seconds:.1f} s"
        )
    if done.kept:
        typer.echo(
            f"service account {done.sub!r} has every scope; its API key saved in {key_file} "
            "still works (unchanged):"
        )
    else:
        if key_file is not None:
            _write_key(key_file, done.key)
            where = f"saved in {key_file}"
        else:
            where = "shown only now"
        typer.echo(
            f"service account {done.sub!r} has every scope; its new API key ({where}; any "
            "earlier demo key no longer works):"
        )
    typer.echo(f"KEY={done.key}")
    typer.echo(
        f'TOKEN=$(curl -s -X POST -H "Authorization: $KEY" {base}/api/jwt '
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"jwt\"])')"
    )
    typer.echo(
        'curl -s -H "Authorization: Bearer $TOKEN" '
        f"'{base}/api/academic/enrollments?is_in_session=true&pagesize=5'"
    )
    typer.echo(
        f"interactive documentation: {base}/docs (Authorize with the key, then POST /api/jwt)"
    )


def _read_key(path: Path | None) -> str | None:
    if path is None or not path.exists():
        return None
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None
    return text or None


def _write_key(path: Path, key: str) -> None:
    """The key, readable by its owner only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None
