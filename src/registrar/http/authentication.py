"""Who is calling: the one reading of the Authorization header, and the one check of its token.

The rate limiter, the access log and every route's dependency all call `authenticate`, so they
cannot disagree about a request: a header the route accepts is one the limiter counts, and one the
limiter does not count is refused by the route. (Issue 9 found `Bearer <4,000 spaces><jwt>` skipped
by the limiter, which had a parser of its own, and accepted by the route's.) The answer is kept on
the request's scope, so the token is read and checked once per request whoever asks first.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

from starlette.types import Scope

from registrar.auth.client import Client
from registrar.auth.tokens import verify_token
from registrar.core.problems import ProblemError, unauthorized

# RFC 6750: `Bearer 1*SP b68token`. Any run of spaces or tabs is allowed between the two (the RFC's
# 1*SP, read generously), a token is base64url/token68, at most MAX_TOKEN_BYTES (our JWTs are about
# 600). A header longer than MAX_HEADER_BYTES is refused whatever it holds.
MAX_TOKEN_BYTES = 4096
MAX_HEADER_BYTES = 8192
_TOKEN68 = (string.ascii_letters + string.digits + "-._~+/").encode()
_BLANKS = b" \t"

_STATE_KEY = "registrar.authenticated"

MISSING_TOKEN = "A bearer token is required."  # noqa: S105 - a message, not a secret
MALFORMED_HEADER = "The Authorization header is not `Bearer <token>`."


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of the request's (first) Authorization header; None when there is none
    or it is not `Bearer <token>` as above."""
    for name, value in headers:
        if name == b"authorization":
            if len(value) > MAX_HEADER_BYTES or value[:6].lower() != b"bearer":
                return None
            rest = value[6:]
            token = rest.lstrip(_BLANKS)
            if len(token) == len(rest):
                return None  # no blank after the scheme: `Bearerxyz`, `Bearer:`
            token = token.rstrip(_BLANKS)
            core = token.rstrip(b"=")
            # (A C-speed check: a regex took 2.5 us on a 700-byte JWT, this one 0.3.)
            if not core or len(token) > MAX_TOKEN_BYTES or core.translate(None, _TOKEN68):
                return None
            return token.decode("ascii")
    return None


def _has_authorization(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == b"authorization" for name, _ in headers)


async def authenticate(scope: Scope) -> Client:
    """The caller, as its bearer token and its account's current grants make it (auth/accounts.py);
    a 401 ProblemError otherwise. Computed once per request."""
    state = scope.setdefault("state", {})
    known = state.get(_STATE_KEY)
    if isinstance(known, Client):
        return known
    if isinstance(known, ProblemError):
        raise known
    try:
        client = await _authenticate(scope)
    except ProblemError as exc:
        state[_STATE_KEY] = exc
        raise
    # Not remembered: a database error (the route answers 503, and may succeed on its own try).
    state[_STATE_KEY] = client
    return client


async def _authenticate(scope: Scope) -> Client:
    token = bearer_token(scope["headers"])
    if token is None:
        raise unauthorized(
            MALFORMED_HEADER if _has_authorization(scope["headers"]) else MISSING_TOKEN
        )
    app: Any = scope["app"]
    runtime = app.state.runtime
    client = await verify_token(runtime.keyring, runtime.settings, token)
    admitted: Client = await runtime.accounts.admit(client)
    return admitted


def authenticated(scope: Scope) -> Client | None:
    """The caller if some layer already authenticated this request (no work here)."""
    known = scope.get("state", {}).get(_STATE_KEY)
    return known if isinstance(known, Client) else None


async def caller_sub(scope: Scope) -> str | None:
    """The authenticated `sub` for middleware that must know the caller before or after the route
    (rate limiter, access log); None without a valid token. Only fully verified tokens of live
    accounts count: a forged token can neither borrow nor exhaust another account's limit."""
    if "app" not in scope or getattr(scope["app"].state, "runtime", None) is None:
        return None
    try:
        client = await authenticate(scope)
    except Exception:  # invalid token, or the database is down: the route answers for it
        return None
    return client.sub
