"""`registrar keys`: the login service's signing keys."""

from __future__ import annotations

import typer

from registrar.auth.service import rotate_signing_key
from registrar.cli.common import run_with_db, settings
from registrar.core.runtime import Runtime

app = typer.Typer(help="The login service's signing keys.")


@app.command("rotate")
def rotate() -> None:
    """Add a new signing key; tokens signed by the old one stay valid until they expire."""
    s = settings()

    async def _rotate(runtime: Runtime) -> str:
        return await rotate_signing_key(runtime.db, s.key_encryption_secret)

    typer.echo(f"new signing key {run_with_db(s, _rotate)}")
