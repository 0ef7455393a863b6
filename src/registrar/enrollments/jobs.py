"""PATCH /api/academic/enrollments/{id} (seed 000): course_assessment, through the task queue.

The request checks, in the contract's order, the token (401), the scope (403), that the caller may
see the enrollment (404), the media type (415) and the payload (400), then queues a task and answers
202. The body is read only after auth and the 404 check (it is not a FastAPI body parameter, which
would be parsed before the dependencies run). The worker validates the payload again, since a task
may outlive the code that queued it, and applies it with an audit row in one transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Select, Table, bindparam, func, insert, select, update

from registrar.auth.scopes import ENROLLMENTS_WRITE
from registrar.auth.tokens import Client
from registrar.core.clock import utcnow
from registrar.core.problems import bad_request, not_found
from registrar.enrollments.models import Enrollment, EnrollmentAudit
from registrar.enrollments.repository import visible_enrollment, visible_with
from registrar.http.bodies import read_json_body
from registrar.http.dependencies import RuntimeDep, require_scopes
from registrar.http.problems import problem_responses
from registrar.tasks.handlers import (
    ClaimedTask,
    HandlerResult,
    PermanentTaskError,
    absolute_url,
    register_handler,
)
from registrar.tasks.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotency_claim
from registrar.tasks.schemas import ACCEPTED_RESPONSE, Accepted
from registrar.tasks.service import accept_write

router = APIRouter(tags=["enrollments"])

RESOURCE = "academic.enrollments"
SUCCESS_MESSAGE = "Enrollment updated successfully."
ASSESSMENT_KEYS = ("submit_date", "opt_out_date")
MAX_ERRORS = 20

# UTC only: a Z (or +00:00) suffix; seconds required; up to microseconds. Other offsets are refused
# rather than converted, because a client sending local time has most likely made a mistake.
_UTC_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")

_DATE_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{_UTC_DATETIME.pattern}$",  # JSON Schema patterns are unanchored
            "examples": ["2020-03-05T17:53:46Z"],
        },
        {"type": "null"},
    ]
}
PATCH_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["course_assessment"],
    "properties": {
        "course_assessment": {
            "type": "object",
            "description": "Both keys required; at most one non-null; both null clears "
            "course_assessment to null. Dates are ISO 8601 UTC.",
            "additionalProperties": False,
            "required": list(ASSESSMENT_KEYS),
            "properties": {key: _DATE_SCHEMA for key in ASSESSMENT_KEYS},
        }
    },
}


def _name(key: object) -> str:
    text = str(key)
    return text if len(text) <= 64 else text[:61] + "..."


def _format_utc(value: dt.datetime) -> str:
    # isoformat, not strftime: strftime does not zero-pad years before 1000 on every platform.
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"


def _parse_date(key: str, value: Any, errors: list[str]) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _UTC_DATETIME.fullmatch(value):
        errors.append(
            f"course_assessment.{key} must be null or an ISO 8601 UTC date-time "
            "like 2020-03-05T17:53:46Z."
        )
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        errors.append(f"course_assessment.{key} is not a valid date-time.")
        return None


def validate_payload(body: Any) -> tuple[dict[str, Any], list[str]]:
    """The normalized payload and every problem found (empty when valid)."""
    if not isinstance(body, dict):
        return {}, ["The payload must be a JSON object with a course_assessment attribute."]
    errors: list[str] = []
    errors += [f"Unknown attribute: {_name(k)}." for k in body if k != "course_assessment"]
    if "course_assessment" not in body:
        errors.append("Missing attribute: course_assessment.")
        return {}, errors[:MAX_ERRORS]
    ca = body["course_assessment"]
    if not isinstance(ca, dict):
        errors.append("course_assessment must be an object with submit_date and opt_out_date.")
        return {}, errors[:MAX_ERRORS]
    errors += [
        f"Unknown attribute: course_assessment.{_name(k)}." for k in ca if k not in ASSESSMENT_KEYS
    ]
    errors += [f"Missing attribute: course_assessment.{k}." for k in ASSESSMENT_KEYS if k not in ca]
    dates = {k: _parse_date(k, ca.get(k), errors) for k in ASSESSMENT_KEYS}
    if ca.get("submit_date") is not None and ca.get("opt_out_date") is not None:
        errors.append("Payload is invalid, contains values for both submit_date and opt_out_date.")
    normalized = {"course_assessment": {k: _format_utc(v) if v else None for k, v in dates.items()}}
    return normalized, errors[:MAX_ERRORS]


@router.patch(
    "/api/academic/enrollments/{enrollment_id}",
    summary="Update an enrollment's course_assessment (queued)",
    status_code=202,
    response_model=Accepted,
    responses={
        202: ACCEPTED_RESPONSE,
        **problem_responses(400, 401, 403, 404, 413, 415, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": PATCH_BODY_SCHEMA,
                    "example": {
                        "course_assessment": {
                            "submit_date": "2020-03-05T17:53:46Z",
                            "opt_out_date": None,
                        }
                    },
                }
            },
        },
        "parameters": [IDEMPOTENCY_KEY_PARAMETER],
    },
)
async def patch_enrollment(
    enrollment_id: str,
    request: Request,
    runtime: RuntimeDep,
    client: Annotated[Client, Depends(require_scopes(ENROLLMENTS_WRITE))],
) -> JSONResponse:
    found = await runtime.db.read_cached(visible_enrollment, enrollment_id, client.sees_private)
    if found is None:
        raise not_found("enrollment")
    body = await read_json_body(request)
    normalized, errors = validate_payload(body)
    if errors:
        raise bad_request("The payload is not valid.", errors)
    return await accept_write(
        runtime,
        request,
        client,
        resource=RESOURCE,
        action="PATCH",
        resource_id=enrollment_id,
        payload=normalized,
        idempotency=idempotency_claim(request, client.sub, normalized),
    )


def _assessment(submit: dt.datetime | None, opt_out: dt.datetime | None) -> dict[str, Any] | None:
    if submit is None and opt_out is None:
        return None
    return {
        "submit_date": _format_utc(submit) if submit else None,
        "opt_out_date": _format_utc(opt_out) if opt_out else None,
    }


# The handler's statements, built once: it runs once per task and is the worker's hot path, and
# building a statement (and its cache key) costs more than running it. Core on the Tables, not
# ORM objects. Keyed by (requester sees private people, PostgreSQL).
_ENROLLMENTS = cast(Table, Enrollment.__table__)
_AUDITS = cast(Table, EnrollmentAudit.__table__)


def _current(private: bool, lock: bool) -> Select[Any]:
    query = select(
        Enrollment.pk, Enrollment.course_submit_date, Enrollment.course_opt_out_date
    ).where(Enrollment.id == bindparam("enrollment_id"), *visible_with(private))
    # PostgreSQL: a row lock, so two tasks on one enrollment record true before/after values in
    # order. (SQLite's write transaction already excludes every other writer.)
    return query.with_for_update(of=Enrollment) if lock else query


_CURRENT = {
    (private, lock): _current(private, lock) for private in (False, True) for lock in (False, True)
}
# Two questions about the tasks applied here so far: was this task one of them (the unique
# task_id), and when was the newest of them requested (the (enrollment_id, requested_at) index)?
# Each is one index probe, however long the enrollment's history.
_APPLIED = select(
    select(func.count())
    .select_from(_AUDITS)
    .where(_AUDITS.c.task_id == bindparam("task_id"))
    .scalar_subquery(),
    select(func.max(_AUDITS.c.requested_at))
    .where(_AUDITS.c.enrollment_id == bindparam("enrollment_id"))
    .scalar_subquery(),
)
_WRITE = (
    update(_ENROLLMENTS)
    .where(_ENROLLMENTS.c.pk == bindparam("enrollment_pk"))
    .values(course_submit_date=bindparam("submit"), course_opt_out_date=bindparam("opt_out"))
)
_AUDIT = insert(_AUDITS)


def apply_course_assessment(connection: Connection, task: ClaimedTask) -> HandlerResult:
    """The task handler: write the two columns and the audit row, once per task."""
    enrollment_id = task.resource_id or ""
    url = absolute_url(task, "/api/academic/enrollments/" + quote(enrollment_id, safe=""))
    normalized, errors = validate_payload(task.payload)
    if errors:
        raise PermanentTaskError(str(errors))
    # The FERPA rule is the repository's `visible_to`, decided as the request was (its token's
    # scope is stored on the task).
    current = _CURRENT[(task.private_scope, connection.dialect.name == "postgresql")]
    row = connection.execute(current, {"enrollment_id": enrollment_id}).first()
    if row is None:
        raise PermanentTaskError(str([f"Enrollment {enrollment_id} does not exist."]))
    pk, submit, opt_out = row
    # Two questions about the tasks applied here so far, answered in one row, under the lock:
    # was this task one of them, and when was the newest of them requested?
    already, newest_applied = connection.execute(
        _APPLIED, {"task_id": task.id, "enrollment_id": enrollment_id}
    ).one()
    # Idempotency: the audit row is unique per task and commits with the change. If this task's
    # row exists, its change was already applied: report success and change nothing.
    if already:
        return HandlerResult(url, SUCCESS_MESSAGE)
    before = _assessment(submit, opt_out)
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
        connection.execute(_WRITE, {"enrollment_pk": pk, "submit": submit, "opt_out": opt_out})
    connection.execute(
        _AUDIT,
        {
            "enrollment_id": enrollment_id,
            "task_id": task.id,
            "actor_sub": task.sub,
            "worker_id": task.worker_id,
            "changed_at": utcnow(),
            "started_at": task.started_at or utcnow(),
            "before": {"course_assessment": before},
            "after": {"course_assessment": _assessment(submit, opt_out)},
            "note": note,
            "requested_at": task.request_date,
        },
    )
    return HandlerResult(url, SUCCESS_MESSAGE)


register_handler(RESOURCE, "PATCH", apply_course_assessment)
