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
from registrar.sis.refresh import RefreshStatus, refresh_status
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
        "or `503` with `?require=writes`, for a load balancer or monitor that should act on it. "
        "With a scheduled SIS refresh (REGISTRAR_SIS_EXTRACT), `sis_refresh` says when the last "
        "successful one committed and how long ago (`age_seconds`), and how the newest attempt "
        "ended: an old or failed refresh leaves the answer `200` (the last good data is served)."
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
    sis = await _sis_refresh(runtime)
    extra = {} if sis is None else {"sis_refresh": _refresh_health(sis)}
    writes = runtime.db.write_health
    if not writes.failing() or writes.since is None or writes.last is None:
        return JSONResponse({"status": "ok", "database": runtime.db.dialect, **extra})
    body = {
        "status": "degraded",
        "database": runtime.db.dialect,
        "reads": "ok",
        "writes": f"failing since {iso_z(writes.since)}",
        "reason": writes.reason,
        "last_failure": iso_z(writes.last),
        **extra,
    }
    if require == "writes":
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(retry_after)})
    return JSONResponse(body)


def _refresh_health(sis: RefreshStatus) -> dict[str, object]:
    age = sis.success_age()
    ok = sis.last_ok
    return {
        "last_success": iso_z(ok.finished_at) if ok is not None else None,
        "age_seconds": None if age is None else round(age),
        "last_attempt": sis.last.status if sis.last is not None else None,
    }


async def _sis_refresh(runtime: Runtime) -> RefreshStatus | None:
    """The scheduled refresh's record, when one is configured (None also if it cannot be read:
    /health and /metrics answer about the rest)."""
    if runtime.settings.sis_extract is None:
        return None
    try:
        return await refresh_status(runtime.db)
    except Exception:
        log.warning("cannot read the SIS refresh record")
        return None


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
        sis_refresh=await _sis_refresh(runtime),
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)
