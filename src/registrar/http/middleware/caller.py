"""The caller's identity for middleware that must know it before the route runs."""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

from registrar.auth.tokens import verify_token


async def caller_sub(scope: Scope) -> str | None:
    """The verified `sub` of the request's bearer token, for middleware that must know the caller
    before the route runs (rate limiter, access log); None without a valid token.

    `verify_token` remembers each token it verified (on the app's keyring), so after the first
    request this is a dict lookup. Only fully verified tokens count: a forged token can neither
    borrow nor exhaust another account's rate limit.
    """
    token = bearer_token(scope)
    if token is None:
        return None
    app: Any = scope.get("app")
    runtime = getattr(getattr(app, "state", None), "runtime", None)
    if runtime is None:
        return None
    try:
        client = await verify_token(runtime.keyring, runtime.settings, token.decode())
    except Exception:  # invalid token or database down: the route answers for it
        return None
    return client.sub


def bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            if value[:7].lower() == b"bearer " and len(value) < 4096:
                token = value[7:].strip()
                return token or None
            return None
    return None
