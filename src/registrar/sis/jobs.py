"""The SIS's task: the scheduled refresh (`sis.refresh`, queued by the periodic schedule)."""

from __future__ import annotations

from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.sis import refresh as refreshes
from registrar.tasks.handlers import ClaimedTask, HandlerResult, PermanentTaskError

REFRESH = refreshes.RESOURCE


async def refresh(db: Database, settings: Settings, task: ClaimedTask) -> HandlerResult:
    """A job that keeps its own transactions (the load's): see sis/refresh.py."""
    try:
        message = await refreshes.refresh(
            db, settings, task_id=task.id, attempt=task.attempts, worker_id=task.worker_id
        )
    except refreshes.RefreshFailed as exc:
        raise PermanentTaskError([str(exc)]) from None
    return HandlerResult(path=None, message=message)
