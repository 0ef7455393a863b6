"""GET /api/petition_types, /api/origins, /api/schools (and /{id}): the reference codes.

Any valid token may read them: they are the vocabulary of petitions, not data about anyone. The
lists are collections like every other (filters, paging, found sets, the same headers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from registrar.core.settings import get_settings
from registrar.http.dependencies import CurrentClient, PageQueryDep, RuntimeDep
from registrar.http.openapi import collection_route, path_example
from registrar.http.problems import problem_responses
from registrar.http.responses import FastJSON, page_headers
from registrar.http.urls import public_url
from registrar.reference import service
from registrar.reference.filters import FIELDS
from registrar.reference.schemas import CodeOut

router = APIRouter(tags=["reference"])

NOTE = "Any valid token may read reference codes; no scope is needed."


def _routes(table: str, path: str, label: str, example: str) -> None:
    """A list route and a by-id route for one reference table."""

    async def list_codes(
        request: Request, client: CurrentClient, runtime: RuntimeDep, query: PageQueryDep
    ) -> Any:
        body, page = await service.list_codes(runtime.db, client, table, query)
        return FastJSON(body, headers=page_headers(page, public_url(request)))

    async def get_code(code_id: str, _client: CurrentClient, runtime: RuntimeDep) -> Any:
        return FastJSON(await service.get_code(runtime.db, table, code_id))

    list_codes.__name__ = f"list_{table}"
    get_code.__name__ = f"get_{table}"
    _list: Callable[..., Awaitable[Any]] = list_codes
    _get: Callable[..., Awaitable[Any]] = get_code
    router.get(
        path,
        summary=f"List {label}s (filtered, paged)",
        description=NOTE + " The body is a bare JSON array; see the headers for paging.",
        response_model=list[CodeOut],
        **collection_route(FIELDS[table], get_settings()),
    )(_list)
    router.get(
        path + "/{code_id}",
        summary=f"Get one {label} (e.g. {example})",
        description=NOTE + " Codes match case-insensitively.",
        response_model=CodeOut,
        responses=problem_responses(404),
        openapi_extra={
            "parameters": [path_example("code_id", example.lower(), f"The {label}'s code.")]
        },
    )(_get)


_routes("petition_types", "/api/petition_types", "petition type", "Q14")
_routes("origins", "/api/origins", "origin", "UREG")
_routes("schools", "/api/schools", "school", "UG")
