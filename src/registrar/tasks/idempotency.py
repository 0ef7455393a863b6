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
from fastapi import Request
from sqlalchemy import Connection, Table, delete, insert, select

from registrar.core.clock import utcnow
from registrar.core.problems import ProblemError, bad_request
from registrar.tasks.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEY_TTL = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
KEYS: Table = IdempotencyKey.__table__  # type: ignore[assignment]


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


def idempotency_claim(request: Request, sub: str, body: Any) -> IdempotencyClaim | None:
    """The request's claim on a key, or None without the header; 400 for a malformed key."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise bad_request(
            "The Idempotency-Key header is not valid.",
            [f"{HEADER}: 1 to {MAX_KEY_LENGTH} printable ASCII characters"],
        )
    return IdempotencyClaim(
        sub=sub, key=key, fingerprint=fingerprint(request.method, request.url.path, body)
    )


def find_replay(connection: Connection, claim: IdempotencyClaim) -> str | None:
    """The task id an earlier identical request queued; 422 if the key was used for another one."""
    k = KEYS.c
    mine = (k.sub == claim.sub) & (k.key == claim.key)
    row = connection.execute(select(k.request_hash, k.task_id, k.created_at).where(mine)).first()
    if row is None:
        return None
    if row.created_at < utcnow() - KEY_TTL:
        # Expired but not yet pruned: forget it, so the key can name this new request.
        connection.execute(delete(KEYS).where(mine))
        return None
    if row.request_hash != claim.fingerprint:
        raise ProblemError(
            422,
            "This Idempotency-Key was already used for a different request.",
            slug="idempotency-key-reused",
            errors=[f"{HEADER}: reused with a different method, URL or body"],
        )
    return str(row.task_id)


def remember(connection: Connection, claim: IdempotencyClaim, task_id: str) -> None:
    connection.execute(
        insert(KEYS).values(
            sub=claim.sub,
            key=claim.key,
            request_hash=claim.fingerprint,
            task_id=task_id,
            created_at=utcnow(),
        )
    )


def prune_keys(connection: Connection) -> int:
    result = connection.execute(delete(KEYS).where(KEYS.c.created_at < utcnow() - KEY_TTL))
    return int(getattr(result, "rowcount", 0) or 0)
