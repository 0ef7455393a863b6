"""Response hardening (security headers, CORS) and the caller's identity for middleware.

Headers: every response says nosniff, no referrer, no framing; API answers are `no-store` (records
of students must not sit in shared caches) unless a route chose its own Cache-Control (the public
JWKS does); everything but the interactive docs gets a CSP that allows nothing, since the API serves
only JSON. /docs and /redoc load Swagger UI / ReDoc from a CDN with inline script, so they get a
CSP limited to that CDN instead.

CORS is off unless REGISTRAR_CORS_ORIGINS names origins: a server-to-server API needs none, and a
browser app must be allowed explicitly.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registrar.core.settings import Settings

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    b"https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    b"base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_API_HEADERS = [*_COMMON, (b"content-security-policy", API_CSP)]
_DOCS_HEADERS = [*_COMMON, (b"content-security-policy", DOCS_CSP)]
_NO_STORE = (b"cache-control", b"no-store")

# Headers a browser script may read on a cross-origin answer (paging, tracing, limits, tasks).
EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-Correlation-ID",
    "X-Total-Count",
    "Link",
    "X-Ignored-Parameters",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]


class SecurityHeaders:
    """Adds the headers at `http.response.start`: no body buffering, a list append per response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _DOCS_HEADERS if scope["path"] in DOCS_PATHS else _API_HEADERS

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in names)
                if b"cache-control" not in names:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_secured)


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Starlette's CORS middleware, only when the operator named origins."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        # Bearer tokens travel in a header, never in cookies: no credentials mode needed.
        allow_credentials=False,
        allow_methods=["GET", "POST", "PATCH", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Correlation-ID"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )


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
    from registrar.auth.tokens import verify_token

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
