"""Absolute URLs the service gives out (the `Link` headers of collections): under
REGISTRAR_PUBLIC_URL when it is set, else under the request's own base, whose Host the Host check
(http/middleware/hosts.py) has already found well-formed (and allowed). A task's `path` follows the
same rule (tasks/service.py)."""

from __future__ import annotations

from starlette.datastructures import URL
from starlette.requests import Request


def public_url(request: Request) -> URL:
    """The request's URL as clients should see it: REGISTRAR_PUBLIC_URL's scheme, host and path
    prefix with the request's path and query, when it is set."""
    base = request.app.state.runtime.settings.public_url
    if not base:
        return request.url
    query = request.url.query
    return URL(base.rstrip("/") + request.url.path + (f"?{query}" if query else ""))
