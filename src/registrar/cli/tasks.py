"""`registrar tasks stats` and `registrar tasks retry`: the operator's view of the queue."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from registrar.cli.common import fail, run_with_db, settings
from registrar.core.runtime import Runtime
from registrar.tasks import repository as repo

app = typer.Typer(help="The task queue: figures and retries.")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


@app.command("stats")
def stats() -> None:
    """Queued, running and failed tasks, the oldest waiting, per resource."""

    async def _stats(runtime: Runtime) -> dict[str, Any]:
        return await runtime.db.read(repo.stats)

    s = run_with_db(settings(), _stats)
    typer.echo(
        f"queued {s['queued']}  running {s['running']}  failed {s['failed']}  "
        f"complete {s['complete']}  oldest queued {_age(s['oldest_queued_age'])}"
    )
    if s["per_resource"]:
        table = Table("resource", "queued", "running", "failed", "complete", "oldest queued")
        for r in s["per_resource"]:
            table.add_row(
                r["resource"],
                str(r["queued"]),
                str(r["running"]),
                str(r["failed"]),
                str(r["complete"]),
                _age(r["oldest_queued_age"]),
            )
        Console(width=120).print(table)


@app.command("retry")
def retry(task_id: Annotated[str, typer.Argument(help="A task that ended in error")]) -> None:
    """Queue a task that ended in error again."""

    async def _retry(runtime: Runtime) -> str | None:
        return await runtime.db.write(repo.requeue_failed, task_id)

    problem = run_with_db(settings(), _retry)
    if problem is not None:
        raise fail(f"cannot retry {task_id}: {problem}")
    typer.echo(f"task {task_id} queued again")
