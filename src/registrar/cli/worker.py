"""`registrar worker`: a task worker process (any number, on any machine sharing the database)."""

from __future__ import annotations

from typing import Annotated

import typer

from registrar.cli.common import fail, migrate_or_fail, settings
from registrar.observability.logs import configure_logging
from registrar.tasks.worker import run_worker


def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            help="Batches (transactions of up to 100 tasks) run at once by this process on "
            "PostgreSQL; SQLite runs one batch at a time"
        ),
    ] = 4,
) -> None:
    """Run a task worker process (any number, on any machine sharing the database)."""
    s = settings()
    if concurrency < 1:
        raise fail("--concurrency must be at least 1")
    configure_logging(s)
    migrate_or_fail(s)
    run_worker(s, concurrency=concurrency)
