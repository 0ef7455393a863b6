"""`registrar clients`: the service accounts campus applications log in with."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Row

from registrar.auth.service import (
    ServiceAccountError,
    create_service_account,
    list_service_accounts,
    revoke_service_account,
)
from registrar.cli.common import fail, run_with_db, settings
from registrar.core.runtime import Runtime

app = typer.Typer(help="Service accounts: the API keys campus applications log in with.")


@app.command("create")
def create(
    sub: Annotated[str, typer.Option(help="The account's subject (the token's `sub`)")],
    name: Annotated[str, typer.Option(help="Display name")],
    email: Annotated[str, typer.Option(help="Contact email")],
    scopes: Annotated[str, typer.Option(help="Granted scopes, space or comma separated")],
) -> None:
    """Register a service account; its new API key is printed alone on the last line."""
    s = settings()

    async def _create(runtime: Runtime) -> str:
        return await create_service_account(
            runtime.db, s, sub=sub, name=name, email=email, scopes=scopes
        )

    try:
        key = run_with_db(s, _create)
    except ServiceAccountError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"created service account {sub}; its API key (shown only now):")
    typer.echo(key)


@app.command("list")
def list_() -> None:
    """List service accounts (never their keys)."""

    async def _list(runtime: Runtime) -> list[Row[Any]]:
        return await list_service_accounts(runtime.db)

    accounts = run_with_db(settings(), _list)
    table = Table("sub", "name", "email", "scopes", "key", "created", "revoked")
    for a in accounts:
        table.add_row(
            a.sub,
            a.name,
            a.email,
            a.scopes,
            a.key_prefix + "…",
            a.created_at.strftime("%Y-%m-%d %H:%M"),
            a.revoked_at.strftime("%Y-%m-%d %H:%M") if a.revoked_at else "",
        )
    Console(width=200).print(table)


@app.command("revoke")
def revoke(sub: Annotated[str, typer.Argument(help="The account's sub")]) -> None:
    """Revoke a service account's API key: it can no longer log in."""

    async def _revoke(runtime: Runtime) -> bool:
        return await revoke_service_account(runtime.db, sub)

    if not run_with_db(settings(), _revoke):
        raise fail(f"no service account with sub {sub!r}")
    typer.echo(f"revoked {sub}")
