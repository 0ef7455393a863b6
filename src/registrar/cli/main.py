"""The `registrar` command: one module per command group, gathered here."""

from __future__ import annotations

import typer

from registrar.cli import clients, keys, reference, sis, tasks
from registrar.cli.demo import demo
from registrar.cli.load import load
from registrar.cli.migrate import migrate
from registrar.cli.serve import serve
from registrar.cli.worker import worker

app = typer.Typer(
    help="registrar: the Academic Records API. Configure with REGISTRAR_* environment variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
app.add_typer(tasks.app, name="tasks")
app.add_typer(reference.app, name="reference")
app.add_typer(sis.app, name="sis")
for command in (serve, worker, migrate, load, demo):
    app.command()(command)
