"""The service's one pruning chore (`tasks.prune`, a periodic job): what it no longer needs.

Every periodic deletion lives here, in one task an hour, so there is one place to look and one
schedule: finished tasks and the deliveries' logs past REGISTRAR_TASK_RETENTION_DAYS, expired
Idempotency-Keys, and events past REGISTRAR_EVENT_RETENTION_DAYS.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from registrar.core.clock import utcnow
from registrar.events import repository as events_repo
from registrar.tasks import repository as repo
from registrar.tasks.handlers import ClaimedTask, HandlerResult
from registrar.webhooks import repository as webhooks_repo

PRUNE = "tasks.prune"
# Hourly: what it deletes is kept for days, so an hour more or less changes nothing, and a slot
# task per hour is 720 rows over the default 30 days' retention.
PRUNE_EVERY_SECONDS = 3600.0


def prune(connection: Connection, task: ClaimedTask) -> HandlerResult:
    """Delete what is past its retention (the periods are the task's payload, as the scheduler
    read them from the settings when it queued the slot)."""
    now = utcnow()
    retention = dt.timedelta(days=int(task.payload["retention_days"]))
    tasks = repo.prune_finished(connection, retention_days=int(task.payload["retention_days"]))
    keys = repo.prune_keys(connection)
    deliveries = webhooks_repo.prune(connection, now - retention)
    # events/repository.py prune keeps the newest expired event as the feed's horizon mark.
    event_days = int(task.payload.get("event_retention_days", 30))
    events = events_repo.prune(connection, now - dt.timedelta(days=event_days))
    return HandlerResult(
        path=None,
        message=(
            f"Pruned {tasks} finished tasks, {keys} expired idempotency keys, "
            f"{deliveries} webhook deliveries and {events} events."
        ),
    )
