"""`registrar reference load FILE`: upsert petition types, origins and schools, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registrar.cli.common import fail, first_line, run_with_db, settings
from registrar.core.runtime import Runtime
from registrar.reference.service import LoadResult, ReferenceLineError, load_codes, parse_lines

app = typer.Typer(help="Reference codes: petition types, origins and schools.")


@app.command("load")
def load(
    file: Annotated[
        Path,
        typer.Argument(help='JSON Lines: {"table": "petition_types", "id": "Q14", "name": ...}'),
    ],
) -> None:
    """Upsert reference codes (all or nothing); a bad line stops the load and writes nothing."""
    s = settings()
    if file.is_dir():
        raise fail(f"cannot read {file}: it is a directory")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        codes = parse_lines(data)
    except ReferenceLineError as exc:
        raise fail(f"{exc} (in {file}; nothing was loaded)") from None

    async def _load(runtime: Runtime) -> LoadResult:
        return await load_codes(runtime.db, codes)

    try:
        result = run_with_db(s, _load)
    except typer.Exit:
        raise
    except Exception as exc:  # a database error: still one line, never a traceback
        raise fail(f"load failed, nothing was loaded: {first_line(exc)}") from None
    typer.echo(result.summary())
