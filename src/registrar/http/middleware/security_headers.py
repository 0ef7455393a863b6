"""Security headers on every response.

Every response says nosniff, no referrer, no framing; API answers are `no-store` (records
of students must not sit in shared caches) unless a route chose its own Cache-Control (the public
JWKS does); everything but the interactive docs gets a CSP that allows nothing, since the API serves
only JSON. /docs and /redoc load Swagger UI / ReDoc from this origin, with no inline script
(http/docs.py), so their CSP allows scripts, styles and fetches from 'self' only.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"font-src 'self'; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
    b"base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc"})

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_API_HEADERS = [*_COMMON, (b"content-security-policy", API_CSP)]
_DOCS_HEADERS = [*_COMMON, (b"content-security-policy", DOCS_CSP)]
_NO_STORE = (b"cache-control", b"no-store")


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
