"""RFC 9457 problem details: every error the API answers has this shape (core/problems.py raises
them; this module renders them, and documents them in the OpenAPI document)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from registrar.core.problems import ProblemError, bad_request
from registrar.db.write_health import storage_failure

log = logging.getLogger("registrar.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://registrar.invalid/problems/"


class Problem(BaseModel):
    """The error body (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[str] = []


def problem_response(problem: ProblemError) -> JSONResponse:
    """The problem as the client gets it: application/problem+json, its headers, its status."""
    body = {
        "type": TYPE_BASE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "errors": problem.errors,
    }
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def internal_error() -> JSONResponse:
    return problem_response(ProblemError(500, "Internal error.", slug="internal-error"))


def database_unavailable(retry_after: int = 5) -> JSONResponse:
    return problem_response(
        ProblemError(
            503,
            "The database is unavailable; try again shortly.",
            slug="database-unavailable",
            headers={"Retry-After": str(retry_after)},
        )
    )


def storage_refused(reason: str, retry_after: int = 5) -> JSONResponse:
    """503 for a write the database's storage refused (disk full, read-only, I/O error)."""
    return problem_response(
        ProblemError(
            503,
            f"The database cannot store changes now ({reason}); nothing was changed. "
            "Try again later.",
            slug="storage-unavailable",
            headers={"Retry-After": str(retry_after)},
        )
    )


def _retry_after(request: Request) -> int:
    runtime = getattr(request.app.state, "runtime", None)
    return int(getattr(getattr(runtime, "settings", None), "db_unavailable_retry_after_seconds", 5))


# asyncpg's names for "the connection went away" (its InterfaceError subclasses and the like),
# matched by name so that SQLite-only installs need not import asyncpg.
_LOST_CONNECTION_TYPES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "InterfaceError",
        "CannotConnectNowError",
        "ConnectionRejectionError",
        "TooManyConnectionsError",
    }
)


def _lost_connection(exc: BaseException) -> bool:
    """True when the driver error at the root of `exc` means the database could not be reached."""
    seen: BaseException | None = exc
    for _ in range(6):  # DBAPIError -> adapter Error -> driver error: a short chain
        if seen is None:
            return False
        if isinstance(seen, OSError) or type(seen).__name__ in _LOST_CONNECTION_TYPES:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def _describe_validation(exc: RequestValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        out.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(bad_request("The request is not valid.", _describe_validation(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(
            ProblemError(exc.status_code, detail, headers=dict(exc.headers or {}))
        )

    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        reason = storage_failure(exc)
        if reason is not None:
            log.warning("database storage refused a write: %s", reason)
            return storage_refused(reason, _retry_after(request))
        # The type only: a driver's message may quote the connection URL (and its password).
        log.warning("database unavailable: %s", type(exc).__name__)
        return database_unavailable(_retry_after(request))

    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(PoolTimeoutError, _database_down)
    app.add_exception_handler(ConnectionError, _database_down)
    app.add_exception_handler(OSError, _database_down)

    # What a lost database looks like on arrival (checked against asyncpg and aiosqlite):
    # - refused/unreachable at connect: the raw OSError (ConnectionRefusedError, socket.gaierror,
    #   TimeoutError), which SQLAlchemy does not wrap because it is not a DB-API error;
    # - dropped mid-query: asyncpg's ConnectionDoesNotExistError or "connection was closed"
    #   wrapped in sqlalchemy InterfaceError/OperationalError/DBAPIError (connection_invalidated
    #   set when SQLAlchemy recognises a disconnect); pool_pre_ping then discards dead connections
    #   so the service recovers by itself when the database returns.
    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if (
            exc.connection_invalidated
            or isinstance(exc, InterfaceError)
            or _lost_connection(exc)
            or storage_failure(exc) is not None
        ):
            return await _database_down(request, exc)
        log.exception("database error")
        return internal_error()

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return internal_error()


# Problems an operation documents itself in the OpenAPI document (401, 403, 429 and 503 follow
# from its security: http/openapi.py). Only application/problem+json: that is what is sent.
def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "description": HTTPStatus(code).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }
