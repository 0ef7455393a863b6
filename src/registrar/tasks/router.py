"""GET /api/tasks/{id}: the record a client polls after a 202."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from registrar.core.problems import not_found
from registrar.http.dependencies import CurrentClient, RuntimeDep
from registrar.http.problems import problem_responses
from registrar.tasks.models import Task
from registrar.tasks.schemas import TaskOut
from registrar.tasks.service import iso

router = APIRouter(tags=["tasks"])

_TASK_ID = re.compile(r"[0-9a-f]{24}")


def task_representation(task: Task) -> dict[str, Any]:
    requester = dict(task.requester or {})
    for claim in ("exp", "iat"):  # numbers, as in the token (seed 003 printed them as strings)
        value = requester.get(claim)
        if isinstance(value, str) and value.isdigit():
            requester[claim] = int(value)
    done = task.status != "accepted"
    return {
        "id": task.id,
        "resource": task.resource,
        "action": task.action,
        "resource_id": task.resource_id,
        "payload": task.payload,
        "requester": {k: requester.get(k) for k in ("sub", "name", "email", "scope", "exp", "iat")},
        "status": task.status,
        "request_date": iso(task.request_date),
        "completed_date": iso(task.completed_date) if done else None,
        "path": task.path if done else None,
        "worker_data": task.worker_data or {},
        "message": task.message if done else None,
    }


@router.get(
    "/api/tasks/{task_id}",
    summary="Poll a task until it is complete or error",
    response_model=TaskOut,
    responses=problem_responses(401, 404),
    description="Any valid token may poll, but a task is visible only to the `sub` that created "
    "it (others get 404). While the task is `accepted`, `path` and `message` are null and a "
    "`Retry-After` header suggests when to poll again.",
)
async def get_task(task_id: str, client: CurrentClient, runtime: RuntimeDep) -> JSONResponse:
    if not _TASK_ID.fullmatch(task_id):
        raise not_found("task")
    async with runtime.db.reading() as session:
        task = await session.get(Task, task_id)
    if task is None or task.sub != client.sub:
        raise not_found("task")
    headers = {}
    if task.status == "accepted":
        headers["Retry-After"] = str(runtime.settings.task_retry_after_seconds)
    return JSONResponse(task_representation(task), headers=headers)
