"""Reading a write's JSON body by hand, after authentication (see the write routes for why)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from registrar.core.problems import ProblemError, bad_request


def is_json(content_type: str | None) -> bool:
    """application/json, or any application/...+json, whatever its parameters (charset...)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json_body(request: Request) -> Any:
    """The body as JSON: 415 unless declared JSON, 400 unless it is strict, well-formed JSON."""
    if not is_json(request.headers.get("content-type")):
        raise ProblemError(
            415,
            "The request body must be application/json.",
            slug="unsupported-media-type",
            errors=["Content-Type: expected application/json"],
        )
    return parse_json_body(await request.body())


def parse_json_body(raw: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, 64-bit numbers, nesting capped (orjson: 1024)."""
    if not raw.strip():
        raise bad_request("The request body is empty.", ["The payload must be a JSON object."])
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, RecursionError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else "malformed JSON"
        raise bad_request("The request body is not valid JSON.", [f"Not JSON: {reason}"]) from None
