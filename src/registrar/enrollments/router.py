"""Enrollments over HTTP: GET /api/academic/enrollments[/{id}], and PATCH .../{id} (seed 000), which
sets course_assessment through the task queue.

The request checks, in the contract's order, the token (401), the scope (403), that the caller may
see the enrollment (404), the media type (415) and the payload (400), then queues a task and answers
202. The body is read only after auth and the 404 check (it is not a FastAPI body parameter, which
would be parsed before the dependencies run). The worker validates the payload again, since a task
may outlive the code that queued it, and applies it with an audit row in one transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from registrar.auth.client import Client
from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    ENROLLMENTS_WRITE,
    PEOPLE_PRIVATE,
)
from registrar.core.problems import bad_request
from registrar.core.settings import get_settings
from registrar.enrollments import service
from registrar.enrollments.filters import FIELDS
from registrar.enrollments.schemas import PATCH_BODY_SCHEMA, EnrollmentRepresentation
from registrar.http.bodies import read_json_body
from registrar.http.dependencies import PageQueryDep, RuntimeDep, require_scopes
from registrar.http.openapi import collection_route, path_example
from registrar.http.problems import problem_responses
from registrar.http.responses import FastJSON, page_headers
from registrar.http.urls import public_url
from registrar.tasks.idempotency import IDEMPOTENCY_KEY_PARAMETER
from registrar.tasks.router import accept_write
from registrar.tasks.schemas import (
    ACCEPTED_RESPONSE,
    FINISHED_RESPONSE,
    PREFER_WAIT_PARAMETER,
    WRITE_PROBLEMS,
    Accepted,
)

router = APIRouter(tags=["enrollments"])

Reader = Annotated[Client, Depends(require_scopes(ENROLLMENTS_READ))]

SCOPES_NOTE = (
    f"Needs `{ENROLLMENTS_READ}`. With `{ENROLLMENTS_READ_SENSITIVE}` the representation also has "
    "`final_grade`, `credit_hours_earned` and `course_assessment` (absent, not null, without it). "
    f"Enrollments of FERPA-protected people exist only for tokens with `{PEOPLE_PRIVATE}`."
)


# The ids of seed 002's and seed 000's sample requests (the demo data has both).
SAMPLE_READ = "AAAS.010.01-202001-U-10188-f002nkd-instructor"
SAMPLE_WRITE = "AAAS.010.01-202001-U-10188-f002qt1-student"
ID_NOTE = "`{section.id}-{netid}-{role}`"


@router.get(
    "/api/academic/enrollments",
    summary="List enrollments (filtered, paged)",
    description=SCOPES_NOTE + " The body is a bare JSON array; see the headers for paging.",
    response_model=list[EnrollmentRepresentation],
    **collection_route(FIELDS, get_settings()),
)
async def list_enrollments(
    request: Request, client: Reader, runtime: RuntimeDep, query: PageQueryDep
) -> Any:
    body, page = await service.list_enrollments(runtime.db, client, query)
    return FastJSON(body, headers=page_headers(page, public_url(request)))


@router.get(
    "/api/academic/enrollments/{enrollment_id}",
    summary="Get one enrollment",
    description=SCOPES_NOTE + " `{id}` is `{section.id}-{netid}-{role}`.",
    response_model=EnrollmentRepresentation,
    responses=problem_responses(404),
    openapi_extra={"parameters": [path_example("enrollment_id", SAMPLE_READ, ID_NOTE)]},
)
async def get_enrollment(enrollment_id: str, client: Reader, runtime: RuntimeDep) -> Any:
    return FastJSON(await service.get_enrollment(runtime.db, enrollment_id, client))


@router.patch(
    "/api/academic/enrollments/{enrollment_id}",
    summary="Update an enrollment's course_assessment (queued)",
    description=(
        "Sets `course_assessment` through the task queue (seed 000): the body holds both "
        "`submit_date` and `opt_out_date`, at most one of them non-null (both null clears it). "
        "Dates are ISO 8601 UTC, kept to the second: fractional seconds are truncated. "
        "Answers 202 with `Location: /api/tasks/{id}`; the task ends `complete` with `path` = "
        "the enrollment's URL, or `error`. Without "
        f"`{PEOPLE_PRIVATE}`, an enrollment of a FERPA-protected person is a 404 here too."
    ),
    status_code=202,
    response_model=Accepted,
    responses={
        202: ACCEPTED_RESPONSE,
        200: FINISHED_RESPONSE,
        **problem_responses(*WRITE_PROBLEMS, 404),
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
        "parameters": [
            path_example("enrollment_id", SAMPLE_WRITE, ID_NOTE),
            IDEMPOTENCY_KEY_PARAMETER,
            PREFER_WAIT_PARAMETER,
        ],
    },
)
async def patch_enrollment(
    enrollment_id: str,
    request: Request,
    runtime: RuntimeDep,
    client: Annotated[Client, Depends(require_scopes(ENROLLMENTS_WRITE))],
) -> JSONResponse:
    await service.check_visible(runtime.db, enrollment_id, client)
    body = await read_json_body(request)
    normalized, errors = service.validate_payload(body)
    if errors:
        raise bad_request("The payload is not valid.", errors)
    return await accept_write(
        runtime,
        request,
        client,
        resource=service.RESOURCE,
        action="PATCH",
        resource_id=enrollment_id,
        payload=normalized,
        idempotency_body=normalized,
    )
