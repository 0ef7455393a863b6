"""The task that creates a petition (seed 003): check every field (petitions/service.py), then
insert one SHREVNT row, once per task however often the task is delivered."""

from __future__ import annotations

import secrets

from sqlalchemy import Connection

from registrar.core.clock import utcnow, whole_second
from registrar.events.record import Change
from registrar.petitions import repository, service
from registrar.tasks.handlers import ClaimedTask, HandlerResult, PermanentTaskError, absolute_url


def petition_url(task: ClaimedTask, petition_id: str) -> str:
    return absolute_url(task, f"/api/academic/petitions/{petition_id}")


def create_petition(connection: Connection, task: ClaimedTask) -> HandlerResult:
    """The task handler: one petition per task, however often the task is delivered."""
    existing = repository.find_by_task(connection, task.id)
    if existing is not None:
        return HandlerResult(petition_url(task, existing), service.SUCCESS_MESSAGE)
    values, errors = service.check_fields(task.payload)
    resolved = service.check_references(
        connection, values, private=task.private_scope, errors=errors
    )
    if errors:
        raise PermanentTaskError(errors[: service.MAX_ERRORS])
    now = whole_second(utcnow())  # shown to the second, so kept to the second (core/clock.py)
    petition_id = secrets.token_hex(12)
    # A concurrent run of the same task fails here on the unique created_by_task; the worker
    # retries it as transient, and the retry finds this petition above.
    repository.insert_petition(
        connection,
        {
            "id": petition_id,
            "netid": resolved["netid"],
            "petition_code": resolved["petition_code"],
            "origin_code": resolved["origin_code"],
            "school": resolved["school"],
            "decision": resolved.get("decision"),
            "grade_term": resolved["grade_term"],
            "user_netid": resolved.get("user_netid"),
            "effective_date": now,
            "cache_date": now,
            "created_by_task": task.id,
        },
    )
    created = Change("petition.created", petition_id, "api", netid=resolved["netid"])
    return HandlerResult(petition_url(task, petition_id), service.SUCCESS_MESSAGE, (created,))
