"""`registrar sis status`: the scheduled SIS refresh as an operator checks it."""

from __future__ import annotations

from typing import Any

import typer

from registrar.cli.common import run_with_db, settings
from registrar.core.clock import iso_z, utcnow
from registrar.core.runtime import Runtime
from registrar.sis.refresh import RefreshStatus, SeenFile, refresh_status

app = typer.Typer(help="The SIS extract's scheduled refresh.")


def _file(row: Any) -> str:
    if row.file_size < 0:
        return f"{row.extract} (could not be read)"
    modified = SeenFile(row.extract, row.file_size, row.file_mtime_ns).modified
    assert modified is not None
    return f"{row.extract} ({row.file_size} bytes, modified {iso_z(modified)})"


@app.command("status")
def status() -> None:
    """The last refresh (when, which file, outcome, counts, API writes kept), the last success
    and the failures."""
    s = settings()

    async def _status(runtime: Runtime) -> RefreshStatus:
        return await refresh_status(runtime.db)

    found = run_with_db(s, _status)
    if s.sis_extract is None:
        typer.echo("extract: not configured (REGISTRAR_SIS_EXTRACT); no scheduled refresh")
    else:
        typer.echo(f"extract: {s.sis_extract}, looked at every {s.sis_refresh_seconds:g} s")
    last = found.last
    if last is None:
        typer.echo("last refresh: none yet")
        return
    when = iso_z(last.finished_at or last.started_at)
    typer.echo(f"last refresh: {last.status} at {when} (task {last.task_id})")
    typer.echo(f"  file: {_file(last)}")
    if last.status == "ok":
        kept = "not counted" if last.kept is None else str(last.kept)
        typer.echo(
            f"  {last.lines} lines: {last.inserted} inserted, {last.updated} updated, "
            f"{last.unchanged} unchanged, {last.removed} removed; API writes kept: {kept}"
        )
    elif last.message:
        typer.echo(f"  {last.message}")
    ok = found.last_ok
    if ok is None:
        typer.echo("last success: never")
    else:
        age = found.success_age(utcnow())
        typer.echo(f"last success: {iso_z(ok.finished_at)} ({age:.0f} s ago), {_file(ok)}")
    typer.echo(f"failed refreshes: {found.failures}")
