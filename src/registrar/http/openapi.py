"""OpenAPI pieces shared by collection routes: the filter and paging parameters, the headers."""

from __future__ import annotations

from typing import Any

from registrar.core.settings import Settings
from registrar.http.problems import problem_responses
from registrar.paging.filters import Field
from registrar.paging.pages import MAX_OFFSET

KIND_SCHEMA = {
    "str": {"type": "string"},
    "bool": {"type": "string", "description": "true or false"},
    "int": {"type": "string"},
    "float": {"type": "string"},
    "datetime": {"type": "string"},
}


def collection_parameters(fields: dict[str, Field], settings: Settings) -> list[dict[str, Any]]:
    """The paging and filter parameters of a collection, with the limits `find_page` enforces."""
    page_max = settings.page_size_max
    params: list[dict[str, Any]] = [
        {
            "name": "page",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_OFFSET, "default": 1},
            "description": "Page number, from 1.",
        },
        {
            "name": "pagesize",
            "in": "query",
            "required": False,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": page_max,
                "default": settings.page_size_default,
            },
            "description": f"Records per page (at most {page_max}).",
        },
        {
            "name": "continuation_key",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "The `X-Request-ID` of an earlier answer: page that same found set. "
            "Other filters are then ignored.",
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": 'Opaque; set by the `Link: rel="next"` URL for fast sequential paging.',
        },
    ]
    for f in fields.values():
        note = f" Needs scope `{f.scope}`; ignored without it." if f.scope else ""
        params.append(
            {
                "name": f.name,
                "in": "query",
                "required": False,
                "schema": KIND_SCHEMA[f.kind],
                "description": (
                    "Filter. A leading `<`, `<=`, `>`, `>=` or `!` compares; a comma list means "
                    "any of; `*` is a wildcard; `null` matches null; `\\` escapes." + note
                ),
            }
        )
    return params


COLLECTION_HEADERS: dict[str, Any] = {
    "X-Request-ID": {
        "description": "Names this found set: pass it as `continuation_key`.",
        "schema": {"type": "string"},
    },
    "X-Total-Count": {"description": "Records in the found set.", "schema": {"type": "integer"}},
    "Link": {
        "description": 'RFC 8288 links: `rel="next"` while more remain, `rel="first"`.',
        "schema": {"type": "string"},
    },
    "X-Ignored-Parameters": {
        "description": "Query parameters that were ignored (unknown, or not visible to the token).",
        "schema": {"type": "string"},
    },
}


def collection_route(fields: dict[str, Field], settings: Settings) -> dict[str, Any]:
    """What every collection route documents beyond its own words: the paging and filter
    parameters, the headers of a page, and the problems it may answer. Spread into the route's
    decorator (`@router.get(path, ..., **collection_route(FIELDS, get_settings()))`)."""
    return {
        "responses": {200: {"headers": COLLECTION_HEADERS}, **problem_responses(400, 401, 403)},
        "openapi_extra": {"parameters": collection_parameters(fields, settings)},
    }
