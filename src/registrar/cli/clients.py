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
    update_service_account_scopes,
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
    """List service accounts: status, granted scopes and the key's public id (never a secret)."""

    async def _list(runtime: Runtime) -> list[Row[Any]]:
        return await list_service_accounts(runtime.db)

    accounts = run_with_db(settings(), _list)
    table = Table("sub", "name", "email", "status", "granted scopes", "key id", "created")
    for a in accounts:
        status = f"revoked {a.revoked_at:%Y-%m-%d %H:%M}Z" if a.revoked_at is not None else "active"
        table.add_row(
            a.sub,
            a.name,
            a.email,
            status,
            "\n".join(a.scopes.split()) or "(none)",
            # The key's public id, `rk_<id>` (keys are `rk_<id>_<secret>`); keys made before
            # ids existed show none: every character of them is secret.
            a.key_prefix or "(no id)",
            f"{a.created_at:%Y-%m-%d %H:%M}Z",
        )
    Console(width=200).print(table)


@app.command("update")
def update(
    sub: Annotated[str, typer.Argument(help="The account's sub")],
    scopes: Annotated[str, typer.Option(help="The scopes it is granted from now on")],
) -> None:
    """Grant exactly these scopes. Tokens already issued lose removed scopes within
    REGISTRAR_ACCOUNT_REFRESH_SECONDS (10) in every process."""

    async def _update(runtime: Runtime) -> bool:
        return await update_service_account_scopes(runtime.db, sub, scopes)

    try:
        found = run_with_db(settings(), _update)
    except ServiceAccountError as exc:
        raise fail(str(exc)) from None
    if not found:
        raise fail(f"no service account with sub {sub!r}")
    typer.echo(f"updated {sub}: {' '.join(scopes.replace(',', ' ').split()) or '(no scopes)'}")


@app.command("revoke")
def revoke(sub: Annotated[str, typer.Argument(help="The account's sub")]) -> None:
    """Revoke a service account: its key can no longer log in, and tokens already issued to it are
    refused within REGISTRAR_ACCOUNT_REFRESH_SECONDS (10) in every process."""

    async def _revoke(runtime: Runtime) -> bool:
        return await revoke_service_account(runtime.db, sub)

    if not run_with_db(settings(), _revoke):
        raise fail(f"no service account with sub {sub!r}")
    typer.echo(f"revoked {sub}")
