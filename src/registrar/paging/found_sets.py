"""Found sets: what `X-Request-ID` names and `continuation_key` pages.

A found set is a signed, self-contained key: the filters, the sub that made it, the highest row
key that existed when it was made (newer rows are not in it), its size and its expiry. Nothing is
written per query, any process can read it (the signing secret is in the database), and it survives
restarts. Paging follows the rows' stable surrogate key, so a client sees each record at most once
even while loads change the data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from registrar.core.problems import bad_request

SECRET_NAME = "found-set-signing"  # noqa: S105 - the name of a secret, not a secret
VERSION = 1


@dataclass(frozen=True)
class FoundSet:
    resource: str
    sub: str
    filters: list[tuple[str, str]]
    snapshot: int
    total: int
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(found: FoundSet, secret: bytes) -> str:
    body = json.dumps(
        [
            VERSION,
            found.resource,
            found.sub,
            found.filters,
            found.snapshot,
            found.total,
            found.expires,
        ],
        separators=(",", ":"),
    ).encode()
    payload = _b64(body)
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()[:18]
    return f"{payload}.{_b64(mac)}"


def decode(key: str, secret: bytes, *, resource: str, sub: str) -> FoundSet:
    """The found set a key names, or 400: unknown, tampered, expired, foreign or misplaced."""
    invalid = bad_request(
        "The continuation_key is not valid.",
        ["continuation_key: unknown, expired or not yours; start a new query without it"],
    )
    if len(key) > 8192 or key.count(".") != 1:
        raise invalid
    payload, mac = key.split(".")
    try:
        expected = hmac.new(secret, payload.encode(), hashlib.sha256).digest()[:18]
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise invalid
        version, res, owner, filters, snapshot, total, expires = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        raise invalid from None
    if version != VERSION or res != resource or owner != sub or expires < time.time():
        raise invalid
    return FoundSet(
        resource=res,
        sub=owner,
        filters=[(str(n), str(v)) for n, v in filters],
        snapshot=int(snapshot),
        total=int(total),
        expires=int(expires),
    )
