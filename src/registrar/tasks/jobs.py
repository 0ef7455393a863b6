"""The task queue's own periodic chore: pruning what it no longer needs (`tasks.prune`)."""

from __future__ import annotations

from sqlalchemy import Connection

from registrar.tasks import repository as repo
from registrar.tasks.handlers import ClaimedTask, HandlerResult

PRUNE = "tasks.prune"
# Hourly: finished tasks are kept for days, so an hour more or less changes nothing, and a slot
# task per hour is 720 rows over the default 30 days' retention.
PRUNE_EVERY_SECONDS = 3600.0


def prune(connection: Connection, task: ClaimedTask) -> HandlerResult:
    """Delete finished tasks past the retention period and expired Idempotency-Keys."""
    tasks = repo.prune_finished(connection, retention_days=int(task.payload["retention_days"]))
    keys = repo.prune_keys(connection)
    return HandlerResult(
        path=None, message=f"Pruned {tasks} finished tasks and {keys} expired idempotency keys."
    )
