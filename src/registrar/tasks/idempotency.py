"""Idempotency-Key on writes (draft-ietf-httpapi-idempotency-key-header).

The same key and the same request from the same `sub` within 24 hours answer the same 202 and
`Location`, and queue nothing new; the same key with a different request is a client bug: 422.
The key row is written in the transaction that queues the task, with primary key (sub, key), so
two racing requests cannot both queue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from registrar.core.problems import ProblemError, bad_request

HEADER = "Idempotency-Key"
KEY_TTL = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255


class KeyReused(ProblemError):
    """The same key from the same caller named another request: a client bug (422)."""

    def __init__(self) -> None:
        super().__init__(
            422,
            "This Idempotency-Key was already used for a different request.",
            slug="idempotency-key-reused",
            errors=[f"{HEADER}: reused with a different method, URL or body"],
        )


@dataclass(frozen=True)
class IdempotencyClaim:
    sub: str
    key: str
    fingerprint: str


def fingerprint(method: str, path: str, body: Any) -> str:
    """Hash of method, path and the parsed body (so spacing and key order do not count)."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(
        method.upper().encode() + b" " + path.encode() + b"\n" + canonical
    ).hexdigest()


# How every write documents the header (the same rule idempotency_claim enforces).
IDEMPOTENCY_KEY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Repeat a request safely: the same key and body within 24 h answer the same "
    "202 and Location; the same key with another body gets 422.",
    "schema": {"type": "string", "pattern": "^[ -~]{1,255}$"},
}


def idempotency_claim(
    key: str | None, *, sub: str, method: str, path: str, body: Any
) -> IdempotencyClaim | None:
    """A request's claim on its `Idempotency-Key` (None without one); 400 for a malformed key."""
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise bad_request(
            "The Idempotency-Key header is not valid.",
            [f"{HEADER}: 1 to {MAX_KEY_LENGTH} printable ASCII characters"],
        )
    return IdempotencyClaim(sub=sub, key=key, fingerprint=fingerprint(method, path, body))
