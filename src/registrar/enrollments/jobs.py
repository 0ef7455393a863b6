"""The task that applies a PATCH of course_assessment: write the two columns and an audit row (who,
when requested and applied, before, after, which task), once per task, newest request winning."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from sqlalchemy import Connection

from registrar.core.clock import utcnow
from registrar.enrollments import repository, service
from registrar.tasks.handlers import ClaimedTask, HandlerResult, PermanentTaskError, absolute_url


def apply_course_assessment(connection: Connection, task: ClaimedTask) -> HandlerResult:
    """The task handler: write the two columns and the audit row, once per task."""
    enrollment_id = task.resource_id or ""
    url = absolute_url(task, "/api/academic/enrollments/" + quote(enrollment_id, safe=""))
    normalized, errors = service.validate_payload(task.payload)
    if errors:
        raise PermanentTaskError(errors)
    # The FERPA rule is the repository's `visible_to`, decided as the request was (its token's
    # scope is stored on the task).
    row = repository.current_assessment(connection, enrollment_id, private=task.private_scope)
    if row is None:
        raise PermanentTaskError([f"Enrollment {enrollment_id} does not exist."])
    pk, submit, opt_out = row
    # Two questions about the tasks applied here so far, answered in one row, under the lock:
    # was this task one of them, and when was the newest of them requested?
    already, newest_applied = repository.applied_so_far(connection, task.id, enrollment_id)
    # Idempotency: the audit row is unique per task and commits with the change. If this task's
    # row exists, its change was already applied: report success and change nothing.
    if already:
        return HandlerResult(url, service.SUCCESS_MESSAGE)
    before = service.assessment(submit, opt_out)
    # Last request wins, even when workers run one enrollment's tasks out of order (a retry, a
    # reclaimed lease, parallel workers): under the lock, if a task requested later has already
    # been applied here, this older request is recorded but does not overwrite it.
    superseded = newest_applied is not None and newest_applied > task.request_date
    note = f"PATCH course_assessment (attempt {task.attempts})"
    if superseded:
        note += "; superseded by a newer request already applied, not written"
    else:
        ca = normalized["course_assessment"]
        submit = dt.datetime.fromisoformat(ca["submit_date"]) if ca["submit_date"] else None
        opt_out = dt.datetime.fromisoformat(ca["opt_out_date"]) if ca["opt_out_date"] else None
        repository.write_assessment(connection, pk, submit, opt_out)
    repository.add_audit(
        connection,
        {
            "enrollment_id": enrollment_id,
            "task_id": task.id,
            "actor_sub": task.sub,
            "worker_id": task.worker_id,
            "changed_at": utcnow(),
            "started_at": task.started_at or utcnow(),
            "before": {"course_assessment": before},
            "after": {"course_assessment": service.assessment(submit, opt_out)},
            "note": note,
            "requested_at": task.request_date,
        },
    )
    return HandlerResult(url, service.SUCCESS_MESSAGE)
