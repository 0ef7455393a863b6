"""The `registrar` command: serve, worker, load, demo, clients, keys, tasks, migrate."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from registrar.core.settings import Settings, get_settings

app = typer.Typer(
    help="registrar: the Academic Records API. Configure with REGISTRAR_* environment variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
clients_app = typer.Typer(help="Service accounts: the API keys campus applications log in with.")
keys_app = typer.Typer(help="The login service's signing keys.")
tasks_app = typer.Typer(help="The task queue: figures and retries.")
reference_app = typer.Typer(help="Reference codes: petition types, origins and schools.")
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
app.add_typer(tasks_app, name="tasks")
app.add_typer(reference_app, name="reference")

T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr and a non-zero exit: the CLI's only way to report bad input.

    Plain echo, not rich: rich wraps at the console width (80 columns in a pipe), which would split
    the one line that scripts and tests read.
    """
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the bad variable
        raise fail(f"bad configuration: {exc}".splitlines()[0]) from None


def run_with_db(s: Settings, fn: Callable[..., Awaitable[T]]) -> T:
    """Migrate, then run `fn(runtime)` on a fresh event loop."""
    from registrar.core.runtime import Runtime
    from registrar.db.migrate import upgrade

    try:
        upgrade(s.database_url)
    except Exception as exc:
        raise fail(f"cannot open the database: {exc}".splitlines()[0]) from None

    async def _main() -> T:
        runtime = Runtime.build(s)
        try:
            return await fn(runtime)
        finally:
            await runtime.close()

    return asyncio.run(_main())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run a task worker")
    ] = False,
    processes: Annotated[
        int, typer.Option(help="API processes (PostgreSQL only for more than 1)")
    ] = 1,
) -> None:
    """Serve the API, with an in-process task worker unless --no-worker."""
    import uvicorn

    from registrar.db.migrate import upgrade

    s = settings()
    if processes < 1:
        raise fail("--processes must be at least 1")
    try:
        upgrade(s.database_url)
    except Exception as exc:
        raise fail(f"cannot open the database: {exc}".splitlines()[0]) from None
    if no_worker:
        os.environ["REGISTRAR_RUN_WORKER"] = "false"
    get_settings.cache_clear()
    uvicorn.run(
        "registrar.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_level=s.log_level.lower(),
        access_log=False,
        # Longer than the usual load balancer idle timeout (60 s): the balancer, not us, closes an
        # idle connection, so a request is never sent on a connection we are closing (a PATCH
        # cannot be retried blindly; see Idempotency-Key).
        timeout_keep_alive=65,
        timeout_graceful_shutdown=20,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Tasks run at once by this process")] = 4,
) -> None:
    """Run a task worker process (any number, on any machine sharing the database)."""
    from registrar.tasks.worker import run_worker_process

    s = settings()
    if concurrency < 1:
        raise fail("--concurrency must be at least 1")
    run_worker_process(s, concurrency=concurrency)


@app.command()
def migrate() -> None:
    """Apply database migrations (serve and worker also do this on start)."""
    from registrar.db.migrate import upgrade

    s = settings()
    try:
        upgrade(s.database_url)
    except Exception as exc:
        raise fail(f"migration failed: {exc}".splitlines()[0]) from None
    typer.echo("database is up to date")


@app.command()
def load(
    file: Annotated[Path, typer.Argument(help="SIS extract: JSON Lines, one enrollment per line")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Also remove enrollments absent from the extract")
    ] = False,
) -> None:
    """Import a SIS extract (upsert by id); a bad line stops the load and writes nothing."""
    from registrar.sis.load import run_load_command

    run_load_command(settings(), file, replace=replace)


@app.command()
def demo(
    enrollments: Annotated[int, typer.Option(help="How many enrollments to generate")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed, for repeatable data")] = 2020,
    if_empty: Annotated[
        bool,
        typer.Option("--if-empty", help="Only fill an empty database (always a new key)"),
    ] = False,
) -> None:
    """Fill the database with a believable university and a demo service account."""
    from registrar.sis.demo import run_demo_command

    if enrollments < 1:
        raise fail("--enrollments must be at least 1")
    run_demo_command(settings(), enrollments=enrollments, seed=seed, if_empty=if_empty)


@clients_app.command("create")
def clients_create(
    sub: Annotated[str, typer.Option(help="The account's subject (the token's `sub`)")],
    name: Annotated[str, typer.Option(help="Display name")],
    email: Annotated[str, typer.Option(help="Contact email")],
    scopes: Annotated[str, typer.Option(help="Granted scopes, space or comma separated")],
) -> None:
    """Register a service account; its new API key is printed alone on the last line."""
    from registrar.auth.service import ServiceAccountError, create_service_account
    from registrar.core.runtime import Runtime

    s = settings()

    async def _create(runtime: Runtime) -> str:
        async with runtime.db.writing() as session:
            _account, key = await create_service_account(
                session, s, sub=sub, name=name, email=email, scopes=scopes
            )
        return key

    try:
        key = run_with_db(s, _create)
    except ServiceAccountError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"created service account {sub}; its API key (shown only now):")
    typer.echo(key)


@clients_app.command("list")
def clients_list() -> None:
    """List service accounts (never their keys)."""
    from sqlalchemy import select

    from registrar.auth.models import ServiceAccount
    from registrar.core.runtime import Runtime

    async def _list(runtime: Runtime) -> list[ServiceAccount]:
        async with runtime.db.reading() as session:
            return list(
                (await session.scalars(select(ServiceAccount).order_by(ServiceAccount.sub))).all()
            )

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


@clients_app.command("revoke")
def clients_revoke(sub: Annotated[str, typer.Argument(help="The account's sub")]) -> None:
    """Revoke a service account's API key: it can no longer log in."""
    from registrar.auth.service import revoke_service_account
    from registrar.core.runtime import Runtime

    async def _revoke(runtime: Runtime) -> bool:
        async with runtime.db.writing() as session:
            return await revoke_service_account(session, sub)

    if not run_with_db(settings(), _revoke):
        raise fail(f"no service account with sub {sub!r}")
    typer.echo(f"revoked {sub}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; tokens signed by the old one stay valid until they expire."""
    from registrar.auth.signing import rotate
    from registrar.core.runtime import Runtime

    s = settings()

    async def _rotate(runtime: Runtime) -> str:
        async with runtime.db.writing() as session:
            key = await rotate(session, s.key_encryption_secret)
        return key.kid

    typer.echo(f"new signing key {run_with_db(s, _rotate)}")


@tasks_app.command("stats")
def tasks_stats() -> None:
    """Queued, running and failed tasks, the oldest waiting, per resource."""
    from registrar.cli.tasks import print_stats

    print_stats(settings())


@tasks_app.command("retry")
def tasks_retry(task_id: Annotated[str, typer.Argument(help="A task that ended in error")]) -> None:
    """Queue a task that ended in error again."""
    from registrar.cli.tasks import retry_task

    retry_task(settings(), task_id)


@reference_app.command("load")
def reference_load(
    file: Annotated[
        Path,
        typer.Argument(help='JSON Lines: {"table": "petition_types", "id": "Q14", "name": ...}'),
    ],
) -> None:
    """Upsert reference codes (all or nothing); a bad line stops the load and writes nothing."""
    from registrar.reference.load import run_reference_load_command

    typer.echo(run_reference_load_command(settings(), file))


def main() -> None:  # pragma: no cover - console entry point alias
    app(prog_name="registrar")


if __name__ == "__main__":  # pragma: no cover
    main()
