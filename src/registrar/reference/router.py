"""GET /api/petition_types, /api/origins, /api/schools (and /{id}): the reference codes.

Any valid token may read them: they are the vocabulary of petitions, not data about anyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query

from registrar.http.dependencies import CurrentClient, RuntimeDep
from registrar.http.problems import problem_responses
from registrar.http.responses import FastJSON
from registrar.reference import service
from registrar.reference.schemas import CodeOut

router = APIRouter(tags=["reference"])

NOTE = "Any valid token may read reference codes; no scope is needed."
ActiveFilter = Annotated[
    str | None, Query(description="true or false: only active (or inactive) codes")
]


def _routes(table: str, path: str, label: str, example: str) -> None:
    """A list route and a by-id route for one reference table."""

    async def list_codes(
        _client: CurrentClient, runtime: RuntimeDep, is_active: ActiveFilter = None
    ) -> Any:
        return FastJSON(await service.list_codes(runtime.db, table, is_active))

    async def get_code(code_id: str, _client: CurrentClient, runtime: RuntimeDep) -> Any:
        return FastJSON(await service.get_code(runtime.db, table, code_id))

    list_codes.__name__ = f"list_{table}"
    get_code.__name__ = f"get_{table}"
    _list: Callable[..., Awaitable[Any]] = list_codes
    _get: Callable[..., Awaitable[Any]] = get_code
    router.get(
        path,
        summary=f"List {label}s",
        description=NOTE + " The body is a bare JSON array ordered by id.",
        response_model=list[CodeOut],
        responses=problem_responses(400, 401),
    )(_list)
    router.get(
        path + "/{code_id}",
        summary=f"Get one {label} (e.g. {example})",
        description=NOTE,
        response_model=CodeOut,
        responses=problem_responses(401, 404),
    )(_get)


_routes("petition_types", "/api/petition_types", "petition type", "Q14")
_routes("origins", "/api/origins", "origin", "UREG")
_routes("schools", "/api/schools", "school", "UG")
