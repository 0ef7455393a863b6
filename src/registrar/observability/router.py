"""What an operator's tools poll: GET /health (the load balancer) and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from registrar.core.clock import iso_z
from registrar.core.runtime import Runtime
from registrar.db.database import ping
from registrar.http.problems import database_unavailable, problem_responses
from registrar.observability.metrics import TaskFigures, exposition
from registrar.tasks.repository import status_counts

router = APIRouter(tags=["operations"])
log = logging.getLogger("registrar.metrics")


@router.get(
    "/health",
    summary="200 when the database answers; reports writes that storage refuses",
    description=(
        '`200 {"status": "ok"}` when the database answers; `503` problem+json when it '
        "cannot be read. While storage refuses this process's writes (full disk, read-only, I/O "
        "error: every write answers 503 meanwhile, until 30 s pass without such a failure) the "
        'body is `{"status": "degraded", "reads": "ok", "writes": "failing '
        'since ...", ...}`: still `200` (the contract: 200 whenever the database answers), '
        "or `503` with `?require=writes`, for a load balancer or monitor that should act on it."
    ),
    responses={
        **problem_responses(400),
        503: {"description": "database unreachable (or, with ?require=writes, writes failing)"},
    },
)
async def health(request: Request, require: Literal["reads", "writes"] = "reads") -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    retry_after = runtime.settings.db_unavailable_retry_after_seconds
    try:
        await asyncio.wait_for(runtime.db.read(ping), timeout=5)
    except Exception:  # any failure to reach the database means "not healthy"
        return database_unavailable(retry_after)
    writes = runtime.db.write_health
    if not writes.failing() or writes.since is None or writes.last is None:
        return JSONResponse({"status": "ok", "database": runtime.db.dialect})
    body = {
        "status": "degraded",
        "database": runtime.db.dialect,
        "reads": "ok",
        "writes": f"failing since {iso_z(writes.since)}",
        "reason": writes.reason,
        "last_failure": iso_z(writes.last),
    }
    if require == "writes":
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(retry_after)})
    return JSONResponse(body)


async def _task_figures(runtime: Runtime) -> TaskFigures | None:
    """One grouped query on the tasks table; None when the database cannot be read."""
    try:
        return await runtime.db.read(status_counts)
    except Exception:  # metrics must answer even when the database does not
        log.warning("metrics: cannot read task figures")
        return None


async def metrics_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.metrics_token
    if token:
        # Constant-time, like every secret comparison in the service.
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response(
                "metrics need the metrics token\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
    body = exposition(
        runtime.db.read_cache,
        await _task_figures(runtime),
        writes_failing=runtime.db.write_health.failing(),
        reads=runtime.db,
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)
