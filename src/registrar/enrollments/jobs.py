"""The task that applies a PATCH of course_assessment: write the two columns and an audit row (who,
when requested and applied, before, after, which task), once per task, newest request winning.

It is a batch handler (tasks/handlers.py): the worker hands it every such task of a batch at once,
and it reads, writes and audits them all with one statement each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection

from registrar.core.clock import utcnow
from registrar.enrollments import repository, service
from registrar.events.record import Change
from registrar.tasks.handlers import (
    BatchHandler,
    BatchResults,
    ClaimedTask,
    HandlerResult,
    PermanentTaskError,
    absolute_url,
)


def _date(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def apply_course_assessments(connection: Connection, tasks: Sequence[ClaimedTask]) -> BatchResults:
    """Write the two columns and the audit row of each task, once per task.

    Idempotency: the audit row is unique per task and commits with the change; a task whose row
    exists was applied already: it succeeds and changes nothing. Newest request wins, even when
    workers run one enrollment's tasks out of order (a retry, a reclaimed lease, parallel workers):
    under the row lock, a task requested before the newest one applied to its enrollment is
    audited as superseded and not written. The tasks of a batch are taken in request order, each
    one's `before` the previous one's `after`, and only the newest write per enrollment is sent.
    A task that really changed the value (and was not superseded) carries an `enrollment.updated`
    change, which the worker records with the batch's other changes.
    """
    results: BatchResults = {}
    wanted: list[tuple[ClaimedTask, dict[str, Any]]] = []
    for task in tasks:
        normalized, errors = service.validate_payload(task.payload)
        if errors:
            results[task.id] = PermanentTaskError(errors)
        else:
            wanted.append((task, normalized["course_assessment"]))
    if not wanted:
        return results
    # Before locking the rows: a SIS load applying now finishes first (repository.API_WRITE_LOCK).
    repository.share_write_lock(connection)
    found = repository.current_assessments(connection, (t.resource_id or "" for t, _ in wanted))
    newest = repository.newest_requests(connection, found)
    applied = repository.applied_tasks(connection, (t.id for t, _ in wanted))
    # Per enrollment, as the batch leaves it so far: [submit, opt_out, newest request applied].
    state: dict[str, list[Any]] = {}
    writes: dict[int, dict[str, Any]] = {}
    audits: list[dict[str, Any]] = []
    for task, assessment in sorted(wanted, key=lambda w: w[0].request_date):
        enrollment_id = task.resource_id or ""
        row = found.get(enrollment_id)
        # The FERPA rule as the request was decided (its token's scope is stored on the task).
        if row is None or not (task.private_scope or row.public):
            results[task.id] = PermanentTaskError([f"Enrollment {enrollment_id} does not exist."])
            continue
        url = absolute_url(task, "/api/academic/enrollments/" + quote(enrollment_id, safe=""))
        if task.id in applied:
            results[task.id] = HandlerResult(url, service.SUCCESS_MESSAGE)
            continue
        now = state.setdefault(
            enrollment_id,
            [row.course_submit_date, row.course_opt_out_date, newest.get(enrollment_id)],
        )
        before = service.assessment(now[0], now[1])
        # The audit's time, and the row's api_changed_at when written (a load older keeps it).
        changed_at = utcnow()
        note = f"PATCH course_assessment (attempt {task.attempts})"
        if now[2] is not None and now[2] > task.request_date:
            note += "; superseded by a newer request already applied, not written"
        else:
            now[0], now[1] = _date(assessment["submit_date"]), _date(assessment["opt_out_date"])
            now[2] = task.request_date
            writes[row.pk] = {
                "enrollment_pk": row.pk,
                "submit": now[0],
                "opt_out": now[1],
                "changed_at": changed_at,
            }
        after = service.assessment(now[0], now[1])
        changes: tuple[Change, ...] = ()
        if after != before:  # a value that really changed (a superseded task changes nothing)
            changed = ("course_assessment",)
            changes = (Change("enrollment.updated", enrollment_id, "api", row.netid, changed),)
        results[task.id] = HandlerResult(url, service.SUCCESS_MESSAGE, changes)
        audits.append(
            {
                "enrollment_id": enrollment_id,
                "task_id": task.id,
                "actor_sub": task.sub,
                "worker_id": task.worker_id,
                "changed_at": changed_at,
                "started_at": task.started_at or utcnow(),
                "before": {"course_assessment": before},
                "after": {"course_assessment": after},
                "note": note,
                "requested_at": task.request_date,
            }
        )
    repository.write_assessments(connection, list(writes.values()))
    repository.add_audits(connection, audits)
    return results


# The handler tasks/registry.py lists: a batch handler, and a plain one for a single task.
apply_course_assessment = BatchHandler(apply_course_assessments)
