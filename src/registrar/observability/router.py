"""What an operator's tools poll: GET /health (the load balancer) and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from registrar.core.runtime import Runtime
from registrar.db.database import ping
from registrar.http.problems import database_unavailable
from registrar.observability.metrics import TaskFigures, exposition
from registrar.tasks.repository import status_counts

router = APIRouter(tags=["operations"])
log = logging.getLogger("registrar.metrics")


@router.get("/health", summary="200 when the database answers")
async def health(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    try:
        await asyncio.wait_for(runtime.db.read(ping), timeout=5)
    except Exception:  # any failure to reach the database means "not healthy"
        return database_unavailable(runtime.settings.db_unavailable_retry_after_seconds)
    return JSONResponse({"status": "ok", "database": runtime.db.dialect})


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
    body = exposition(runtime.db.read_cache, await _task_figures(runtime))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
