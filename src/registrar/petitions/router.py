"""Petitions over HTTP: POST through the task queue (seed 003), and the reads (portal GET page).

POST checks, in the contract's order, the token (401), the scope (403), the media type (415) and
that the body is a JSON object holding a `petition` object (400), then queues a task and answers
202. The body is read by hand after auth (a FastAPI body parameter would be parsed before the
dependencies run); its schema is documented through openapi_extra. The fields themselves are
validated by the task (petitions/handlers.py), as the contract says.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from registrar.auth.scopes import PEOPLE_PRIVATE, PETITIONS_READ, PETITIONS_WRITE
from registrar.auth.tokens import Client
from registrar.core.problems import bad_request
from registrar.core.settings import get_settings
from registrar.http.bodies import read_json_body
from registrar.http.dependencies import FoundSetSecret, RuntimeDep, require_scopes
from registrar.http.openapi import COLLECTION_HEADERS, collection_parameters
from registrar.http.problems import problem_responses
from registrar.http.responses import FastJSON
from registrar.petitions import service
from registrar.petitions.filters import FIELDS
from registrar.petitions.jobs import (
    ACTION,
    GRADE_TERM,
    MAX_LENGTH,
    OPTIONAL,
    REQUIRED,
    RESOURCE,
)
from registrar.petitions.schemas import PetitionOut
from registrar.tasks.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotency_claim
from registrar.tasks.schemas import ACCEPTED_RESPONSE, Accepted
from registrar.tasks.service import accept_write

router = APIRouter(tags=["petitions"])

Reader = Annotated[Client, Depends(require_scopes(PETITIONS_READ))]
Writer = Annotated[Client, Depends(require_scopes(PETITIONS_WRITE))]
Secret = FoundSetSecret

READ_NOTE = (
    f"Needs `{PETITIONS_READ}`. Petitions of FERPA-protected people exist only for tokens with "
    f"`{PEOPLE_PRIVATE}`."
)

_FIELD_DOCS = {
    "netid": "The student's netid (a known person; case-insensitive).",
    "petition_code": "Banner event code of an active petition type (GET /api/petition_types).",
    "origin_code": "An active origin (GET /api/origins), e.g. UREG.",
    "school": "An active school (GET /api/schools), e.g. UG.",
    "grade_term": "Two digits, a term letter (F, W, S, X), optionally = and a letter: 24F, 24W=L.",
    "decision": "Free text, e.g. IDP 095 or 2023-2024.",
    "user_netid": "The netid of the staff member recording the petition (a known person).",
}
PETITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": list(REQUIRED),
    "properties": {
        key: {
            **(
                {"type": "string"}
                if key in REQUIRED
                else {"anyOf": [{"type": "string"}, {"type": "null"}]}
            ),
            "maxLength": MAX_LENGTH[key],
            "description": _FIELD_DOCS[key],
            **({"pattern": GRADE_TERM.pattern} if key == "grade_term" else {}),
        }
        for key in (*REQUIRED, *OPTIONAL)
    },
}
POST_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["petition"],
    "properties": {"petition": PETITION_SCHEMA},
}
POST_EXAMPLE = {
    "petition": {
        "netid": "f006kdf",
        "petition_code": "Q41",
        "origin_code": "UREG",
        "school": "UG",
        "decision": "IDP 095",
        "grade_term": "24F",
        "user_netid": "f006s0b",
    }
}


def envelope_problems(body: Any) -> list[str]:
    """What the POST itself checks: a JSON object with a `petition` object and nothing else."""
    if not isinstance(body, dict):
        return ["The payload must be a JSON object with a petition attribute."]
    problems = [f"Unknown attribute: {str(k)[:64]}." for k in body if k != "petition"][:20]
    if "petition" not in body:
        problems.append("Missing attribute: petition.")
    elif not isinstance(body["petition"], dict):
        problems.append("petition must be a JSON object.")
    return problems


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
        **problem_responses(400, 401, 403, 413, 415, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": POST_BODY_SCHEMA, "example": POST_EXAMPLE}},
        },
        "parameters": [IDEMPOTENCY_KEY_PARAMETER],
    },
)
async def post_petition(request: Request, runtime: RuntimeDep, client: Writer) -> JSONResponse:
    body = await read_json_body(request)
    problems = envelope_problems(body)
    if problems:
        raise bad_request("The payload is not valid.", problems)
    return await accept_write(
        runtime,
        request,
        client,
        resource=RESOURCE,
        action=ACTION,
        resource_id=None,
        payload=body["petition"],
        idempotency=idempotency_claim(request, client.sub, body),
    )


@router.get(
    "/api/academic/petitions",
    summary="List petitions (filtered, paged)",
    description=READ_NOTE + " The body is a bare JSON array; see the headers for paging.",
    response_model=list[PetitionOut],
    responses={200: {"headers": COLLECTION_HEADERS}, **problem_responses(400, 401, 403)},
    openapi_extra={"parameters": collection_parameters(FIELDS, get_settings().page_size_max)},
)
async def list_petitions(
    request: Request, client: Reader, runtime: RuntimeDep, secret: Secret
) -> Any:
    body, page = await service.list_petitions(
        runtime.db,
        client,
        list(request.query_params.multi_items()),
        settings=runtime.settings,
        secret=secret,
        url=request.url,
    )
    return FastJSON(body, headers=page.headers)


@router.get(
    "/api/academic/petitions/{petition_id}",
    summary="Get one petition",
    description=READ_NOTE + " `{id}` is 24 lowercase hex characters.",
    response_model=PetitionOut,
    responses=problem_responses(401, 403, 404),
)
async def get_petition(petition_id: str, client: Reader, runtime: RuntimeDep) -> Any:
    return FastJSON(await service.get_petition(runtime.db, petition_id, client))


@router.get(
    "/api/students/{netid}/petitions",
    summary="List one student's petitions (filtered, paged)",
    description=READ_NOTE
    + " The same collection as GET /api/academic/petitions with `netid` fixed (case-insensitive)."
    " An unknown (or hidden) student has no petitions: an empty array.",
    response_model=list[PetitionOut],
    responses={200: {"headers": COLLECTION_HEADERS}, **problem_responses(400, 401, 403)},
    openapi_extra={"parameters": collection_parameters(FIELDS, get_settings().page_size_max)},
)
async def list_student_petitions(
    netid: str,
    request: Request,
    client: Reader,
    runtime: RuntimeDep,
    secret: Secret,
) -> Any:
    body, page = await service.list_petitions(
        runtime.db,
        client,
        list(request.query_params.multi_items()),
        settings=runtime.settings,
        secret=secret,
        url=request.url,
        fixed_filters=[service.student_filter(netid)],
    )
    return FastJSON(body, headers=page.headers)
