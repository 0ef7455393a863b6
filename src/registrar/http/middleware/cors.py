"""CORS: off unless REGISTRAR_CORS_ORIGINS names origins. A server-to-server API needs none, and a
browser app must be allowed explicitly."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from registrar.core.settings import Settings

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
