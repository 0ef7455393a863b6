"""Petitions over HTTP: POST through the task queue (seed 003), and the reads (portal GET page).

POST checks, in the contract's order, the token (401), the scope (403), the media type (415) and
that the body is a JSON object holding a `petition` object (400), then queues a task and answers
202. The body is read by hand after auth (a FastAPI body parameter would be parsed before the
dependencies run); its schema is documented through openapi_extra. The fields themselves are
validated by the task (petitions/jobs.py), as the contract says.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from registrar.auth.client import Client
from registrar.auth.scopes import PEOPLE_PRIVATE, PETITIONS_READ, PETITIONS_WRITE
from registrar.core.problems import bad_request
from registrar.core.settings import get_settings
from registrar.http.bodies import read_json_body
from registrar.http.dependencies import PageQueryDep, RuntimeDep, require_scopes
from registrar.http.openapi import collection_route, path_example
from registrar.http.problems import problem_responses
from registrar.http.responses import FastJSON, page_headers
from registrar.http.urls import public_url
from registrar.petitions import service
from registrar.petitions.filters import FIELDS
from registrar.petitions.schemas import POST_BODY_SCHEMA, POST_EXAMPLE, PetitionOut
from registrar.tasks.idempotency import IDEMPOTENCY_KEY_PARAMETER
from registrar.tasks.router import accept_write
from registrar.tasks.schemas import (
    ACCEPTED_RESPONSE,
    FINISHED_RESPONSE,
    PREFER_WAIT_PARAMETER,
    WRITE_PROBLEMS,
    Accepted,
)

router = APIRouter(tags=["petitions"])

Reader = Annotated[Client, Depends(require_scopes(PETITIONS_READ))]
Writer = Annotated[Client, Depends(require_scopes(PETITIONS_WRITE))]

# The petition seed 003's successful task created (the demo data has it), and its student.
SAMPLE_PETITION = "673e4c83255f18cce280f5d7"
SAMPLE_STUDENT = "f006s0b"

READ_NOTE = (
    f"Needs `{PETITIONS_READ}`. Petitions of FERPA-protected people exist only for tokens with "
    f"`{PEOPLE_PRIVATE}`."
)


@router.post(
    "/api/academic/petitions",
    summary="Create a student petition (queued)",
    description=(
        f"Needs `{PETITIONS_WRITE}`. Checks the scope and that the body is a JSON object with a "
        "`petition` object, then queues a task: poll `GET /api/tasks/{id}` (the `Location`). The "
        "task validates every field and ends `complete` with `path` = the new petition's URL, or "
        "`error` with a message naming each problem and `path` = the URL that was called."
    ),
    status_code=202,
    response_model=Accepted,
    responses={
        202: ACCEPTED_RESPONSE,
        200: FINISHED_RESPONSE,
        **problem_responses(*WRITE_PROBLEMS),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": POST_BODY_SCHEMA, "example": POST_EXAMPLE}},
        },
        "parameters": [IDEMPOTENCY_KEY_PARAMETER, PREFER_WAIT_PARAMETER],
    },
)
async def post_petition(request: Request, runtime: RuntimeDep, client: Writer) -> JSONResponse:
    body = await read_json_body(request)
    problems = service.envelope_problems(body)
    if problems:
        raise bad_request("The payload is not valid.", problems)
    return await accept_write(
        runtime,
        request,
        client,
        resource=service.RESOURCE,
        action=service.ACTION,
        resource_id=None,
        payload=body["petition"],
        idempotency_body=body,
    )


@router.get(
    "/api/academic/petitions",
    summary="List petitions (filtered, paged)",
    description=READ_NOTE + " The body is a bare JSON array; see the headers for paging.",
    response_model=list[PetitionOut],
    **collection_route(FIELDS, get_settings()),
)
async def list_petitions(
    request: Request, client: Reader, runtime: RuntimeDep, query: PageQueryDep
) -> Any:
    body, page = await service.list_petitions(runtime.db, client, query)
    return FastJSON(body, headers=page_headers(page, public_url(request)))


@router.get(
    "/api/academic/petitions/{petition_id}",
    summary="Get one petition",
    description=READ_NOTE + " `{id}` is 24 lowercase hex characters.",
    response_model=PetitionOut,
    responses=problem_responses(404),
    openapi_extra={
        "parameters": [path_example("petition_id", SAMPLE_PETITION, "24 lowercase hex characters")]
    },
)
async def get_petition(petition_id: str, client: Reader, runtime: RuntimeDep) -> Any:
    return FastJSON(await service.get_petition(runtime.db, petition_id, client))


student_collection = collection_route(FIELDS, get_settings())
student_collection["openapi_extra"]["parameters"].insert(
    0, path_example("netid", SAMPLE_STUDENT, "The student's netid (case-insensitive)")
)


@router.get(
    "/api/students/{netid}/petitions",
    summary="List one student's petitions (filtered, paged)",
    description=READ_NOTE
    + " The same collection as GET /api/academic/petitions with `netid` fixed (case-insensitive)."
    " An unknown (or hidden) student has no petitions: an empty array.",
    response_model=list[PetitionOut],
    **student_collection,
)
async def list_student_petitions(
    netid: str, request: Request, client: Reader, runtime: RuntimeDep, query: PageQueryDep
) -> Any:
    body, page = await service.list_student_petitions(runtime.db, client, query, netid)
    return FastJSON(body, headers=page_headers(page, public_url(request)))
