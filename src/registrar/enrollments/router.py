"""GET /api/academic/enrollments[/{id}]: thin HTTP over the enrollment service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE
from registrar.auth.tokens import Client
from registrar.core.settings import get_settings
from registrar.enrollments import service
from registrar.enrollments.filters import FIELDS
from registrar.enrollments.schemas import EnrollmentRepresentation
from registrar.http.dependencies import FoundSetSecret, RuntimeDep, require_scopes
from registrar.http.openapi import COLLECTION_HEADERS, collection_parameters
from registrar.http.problems import problem_responses
from registrar.http.responses import FastJSON

router = APIRouter(tags=["enrollments"])

Reader = Annotated[Client, Depends(require_scopes(ENROLLMENTS_READ))]

SCOPES_NOTE = (
    f"Needs `{ENROLLMENTS_READ}`. With `{ENROLLMENTS_READ_SENSITIVE}` the representation also has "
    "`final_grade`, `credit_hours_earned` and `course_assessment` (absent, not null, without it). "
    f"Enrollments of FERPA-protected people exist only for tokens with `{PEOPLE_PRIVATE}`."
)


@router.get(
    "/api/academic/enrollments",
    summary="List enrollments (filtered, paged)",
    description=SCOPES_NOTE + " The body is a bare JSON array; see the headers for paging.",
    response_model=list[EnrollmentRepresentation],
    responses={
        200: {"headers": COLLECTION_HEADERS},
        **problem_responses(400, 401, 403),
    },
    openapi_extra={"parameters": collection_parameters(FIELDS, get_settings().page_size_max)},
)
async def list_enrollments(
    request: Request,
    client: Reader,
    runtime: RuntimeDep,
    secret: FoundSetSecret,
) -> Any:
    body, page = await service.list_enrollments(
        runtime.db,
        client,
        list(request.query_params.multi_items()),
        settings=runtime.settings,
        secret=secret,
        url=request.url,
    )
    return FastJSON(body, headers=page.headers)


@router.get(
    "/api/academic/enrollments/{enrollment_id}",
    summary="Get one enrollment",
    description=SCOPES_NOTE + " `{id}` is `{section.id}-{netid}-{role}`.",
    response_model=EnrollmentRepresentation,
    responses=problem_responses(401, 403, 404),
)
async def get_enrollment(enrollment_id: str, client: Reader, runtime: RuntimeDep) -> Any:
    return FastJSON(await service.get_enrollment(runtime.db, enrollment_id, client))
