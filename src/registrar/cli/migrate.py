"""`registrar migrate`: apply the schema (serve and worker also do it on start)."""

from __future__ import annotations

import typer

from registrar.cli.common import migrate_or_fail, settings


def migrate() -> None:
    """Apply database migrations (serve and worker also do this on start)."""
    migrate_or_fail(settings(), "migration failed")
    typer.echo("database is up to date")
