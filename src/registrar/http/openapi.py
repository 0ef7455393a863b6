"""The OpenAPI document: what collection routes share (the filter and paging parameters, the
headers), and the finishing pass that makes the document say exactly what the service does
(`finish_document`): the problems every operation can answer, the scopes it needs, no 422 that
cannot happen, and the examples exactly as written."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from fastapi.routing import APIRoute

from registrar.core.settings import Settings
from registrar.http.problems import PROBLEM_JSON, Problem, problem_responses
from registrar.paging.filters import Field, FilterLimits

KIND_SCHEMA = {
    "str": {"type": "string"},
    "bool": {"type": "string", "description": "true or false"},
    "int": {"type": "string"},
    "float": {"type": "string"},
    "datetime": {"type": "string"},
}


def collection_parameters(fields: dict[str, Field], settings: Settings) -> list[dict[str, Any]]:
    """The paging and filter parameters of a collection, with the limits `find_page` enforces."""
    pagesize_max = settings.page_size_max
    params: list[dict[str, Any]] = [
        {
            "name": "page",
            "in": "query",
            "required": False,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.page_max,
                "default": 1,
            },
            "description": f"Page number, from 1 to {settings.page_max} (an offset; the "
            '`Link: rel="next"` URLs page by cursor and have no such limit).',
        },
        {
            "name": "pagesize",
            "in": "query",
            "required": False,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": pagesize_max,
                "default": settings.page_size_default,
            },
            "description": f"Records per page (at most {pagesize_max}).",
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
    limits = " " + FilterLimits.of(settings).describe()
    for f in fields.values():
        note = f" Needs scope `{f.scope}`; ignored without it." if f.scope else ""
        note += limits
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
    parameters, the headers of a page, and the 400 of a bad filter or page (401, 403 and the rest
    follow from its security: see `finish_document`). Spread into the route's decorator
    (`@router.get(path, ..., **collection_route(FIELDS, get_settings()))`)."""
    invalid = problem_responses(400)
    invalid[400]["description"] = (
        "A filter or page parameter is not valid or past its limit (named in `errors`), or the "
        f"query was stopped after its statement budget ({settings.statement_budget_ms} ms; "
        "`query-too-costly`)."
    )
    return {
        "responses": {200: {"headers": COLLECTION_HEADERS}, **invalid},
        "openapi_extra": {"parameters": collection_parameters(fields, settings)},
    }


def path_example(name: str, example: str, description: str) -> dict[str, Any]:
    """A path parameter with the example /docs fills in (one that works on the demo data)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
        "example": example,
    }


# The security schemes (the dependencies in http/dependencies.py and auth/router.py declare them):
API_KEY_SCHEME = "apiKey"  # the raw API key in `Authorization`, for POST /api/jwt only
BEARER_SCHEME = "bearer"  # the JWT it returns, for everything else

_RETRY_AFTER = {"description": "Seconds until the window resets", "schema": {"type": "integer"}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`, with the reason",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": _RETRY_AFTER,
        "RateLimit-Limit": {"schema": {"type": "integer"}},
        "RateLimit-Remaining": {"schema": {"type": "integer"}},
        "RateLimit-Reset": {"schema": {"type": "integer"}},
    },
    503: {
        "Retry-After": {
            "description": "Seconds before trying again",
            "schema": {"type": "integer"},
        }
    },
}
_WHY = {
    401: "No token, or one that is malformed, expired, badly signed or revoked.",
    -401: "No API key, or one that is unknown or revoked.",
    403: "The token lacks a scope this operation needs (named in `errors`).",
    429: "Too many requests from this service account this minute.",
    -429: "Too many failed logins from this address this minute; try after `Retry-After`.",
    503: "The database cannot be reached; try again after `Retry-After`.",
}


def _problem(code: int, why: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": why or _WHY[code],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if code in _HEADERS:
        response["headers"] = copy.deepcopy(_HEADERS[code])
    return response


def _operations(doc: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def finish_document(doc: dict[str, Any], routes: Iterable[Any], settings: Settings) -> None:
    """Make the generated document tell the truth, in place:

    - FastAPI's 422 `HTTPValidationError` is gone: a parameter that does not validate is a 400
      problem here (http/problems.py), and the only 422 is an Idempotency-Key reused, which the
      writes document themselves;
    - every operation documents what its security makes possible: 401 for a missing or bad
      credential, 403 when it needs scopes, 429 when rate limiting is on (only tokens are
      counted) and on the login service while failed logins are throttled, and every operation
      that reads the database (`/api/...`, `/health`) 503 when it is down;
    - each operation's description names the scopes its security requirement lists;
    - request bodies' examples are put back exactly as the routes wrote them: FastAPI drops every
      null from the document, and the PATCH example's `"opt_out_date": null` is required.
    """
    for _path, _method, operation in _operations(doc):
        responses = operation["responses"]
        invalid = responses.get("422", {})
        if "HTTPValidationError" in str(invalid.get("content", {})):
            del responses["422"]
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = Problem.model_json_schema()

    for path, _method, operation in _operations(doc):
        # A parameter a route describes in openapi_extra (an example, say) and FastAPI's own
        # for the same name: one parameter, the route's words last.
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for parameter in operation.get("parameters", []):
            key = (parameter["name"], parameter["in"])
            merged[key] = {**merged.get(key, {}), **parameter}
        if merged:
            operation["parameters"] = list(merged.values())
        responses = operation["responses"]
        schemes = {
            name: scopes for req in operation.get("security", []) for name, scopes in req.items()
        }
        needed: list[str] = schemes.get(BEARER_SCHEME, [])
        wanted: list[int] = []
        if schemes:
            wanted.append(401)
        if needed:
            wanted.append(403)
        if BEARER_SCHEME in schemes and settings.rate_limit_per_minute > 0:
            wanted.append(429)
        login_throttled = API_KEY_SCHEME in schemes and settings.login_failures_per_minute > 0
        if login_throttled:
            wanted.append(429)
        if path.startswith("/api/") or path == "/health":
            wanted.append(503)
        for code in wanted:
            why = _WHY[-401] if code == 401 and BEARER_SCHEME not in schemes else None
            if code == 429 and login_throttled:
                why = _WHY[-429]
            responses.setdefault(str(code), _problem(code, why))
            if code == 429 and login_throttled:  # a throttled login has no RateLimit-* headers
                responses["429"]["headers"] = {"Retry-After": copy.deepcopy(_RETRY_AFTER)}
        if needed:
            listed = ", ".join(f"`{s}`" for s in needed)
            operation["description"] = (
                operation.get("description", "") + f"\n\n**Scopes:** {listed}."
            ).strip()
        elif BEARER_SCHEME in schemes:
            operation["description"] = (
                operation.get("description", "") + "\n\n**Scopes:** none (any valid token)."
            ).strip()
        # Keys in a stable, readable order: 2xx first, then the problems by code.
        operation["responses"] = dict(sorted(responses.items()))

    for route in routes:
        body = (getattr(route, "openapi_extra", None) or {}).get("requestBody")
        if not isinstance(route, APIRoute) or body is None:
            continue
        for method in route.methods or ():
            operation = doc["paths"][route.path_format].get(method.lower())
            if operation is not None:
                operation["requestBody"] = copy.deepcopy(body)
