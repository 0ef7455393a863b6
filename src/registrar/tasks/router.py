"""Tasks over HTTP: GET /api/tasks/{id}, the record a client polls after a 202, and how every write
route answers that 202 (`accept_write`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from registrar.auth.client import Client
from registrar.core.runtime import Runtime
from registrar.http.dependencies import CurrentClient, RuntimeDep
from registrar.http.openapi import path_example
from registrar.http.problems import problem_responses
from registrar.http.waiting import PREFERENCE_APPLIED, preferred_wait, seconds
from registrar.tasks import service
from registrar.tasks.idempotency import HEADER, idempotency_claim
from registrar.tasks.models import TaskStatus
from registrar.tasks.schemas import TaskOut

router = APIRouter(tags=["tasks"])

# The task id of seeds 000 and 003's sample Location (the demo account owns it in the demo data).
SAMPLE_TASK = "5cddb466b68a450c3b102bfd"


@router.get(
    "/api/tasks/{task_id}",
    summary="Poll a task until it is complete or error",
    response_model=TaskOut,
    responses=problem_responses(400, 404),
    openapi_extra={
        "parameters": [
            path_example("task_id", SAMPLE_TASK, "24 lowercase hex characters (the Location)"),
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "schema": {"type": "number", "minimum": 0, "maximum": service.MAX_WAIT_SECONDS},
                "description": "Seconds to hold the answer until the task is done (long-poll).",
            },
        ]
    },
    description="Any valid token may poll, but a task is visible only to the `sub` that created "
    "it (others get 404). While the task is `accepted`, `path` and `message` are null and a "
    "`Retry-After` header suggests when to poll again. With `?wait=S` (at most "
    f"{service.MAX_WAIT_SECONDS}) the answer comes as soon as the task is done, or after S "
    "seconds with its current state: no polling loop needed.",
)
async def get_task(
    task_id: str, request: Request, client: CurrentClient, runtime: RuntimeDep
) -> JSONResponse:
    wait = seconds("wait", request.query_params.get("wait"), service.MAX_WAIT_SECONDS)
    if wait > 0:
        task = await service.wait_for_task(runtime.db, runtime.notices, task_id, client, wait)
    else:
        task = await service.get_task(runtime.db, task_id, client)
    headers = {}
    if task["status"] == TaskStatus.ACCEPTED:
        headers["Retry-After"] = str(runtime.settings.task_retry_after_seconds)
    return JSONResponse(task, headers=headers)


async def accept_write(
    runtime: Runtime,
    request: Request,
    client: Client,
    *,
    resource: str,
    action: str,
    resource_id: str | None,
    payload: Any,
    idempotency_body: Any,
) -> JSONResponse:
    """Queue a write and answer 202 with the task's Location, once the task is committed; with
    `Prefer: wait=S` (RFC 7240), 200 and the finished task when it finishes within S seconds.

    `idempotency_body` is what an Idempotency-Key is checked against (the request as parsed).
    """
    wait = preferred_wait(request.headers, service.MAX_WAIT_SECONDS)
    claim = idempotency_claim(
        request.headers.get(HEADER),
        sub=client.sub,
        method=request.method,
        path=request.url.path,
        body=idempotency_body,
    )
    task = service.new_task(
        runtime.settings,
        client,
        base_url=str(request.base_url),
        called_path=request.url.path,
        resource=resource,
        action=action,
        resource_id=resource_id,
        payload=payload,
        correlation_id=getattr(request.state, "correlation_id", None),
    )
    task_id = await runtime.queue.enqueue(task, claim)
    location = f"/api/tasks/{task_id}"
    if wait > 0:
        done = await service.wait_for_task(runtime.db, runtime.notices, task_id, client, wait)
        if done["status"] != TaskStatus.ACCEPTED:
            applied = f"wait={int(wait)}"
            return JSONResponse(done, headers={"Location": location, PREFERENCE_APPLIED: applied})
    return JSONResponse(
        {"status": "accepted"},
        status_code=202,
        headers={
            "Location": location,
            "Retry-After": str(runtime.settings.task_retry_after_seconds),
        },
    )
