"""The Host header, checked before anything builds a URL from it; and which proxies are believed.

Absolute URLs (the `Link` headers of collections, a task's `path`) are built from the request's
Host unless REGISTRAR_PUBLIC_URL is set (http/urls.py). A malformed Host (`[::1`, issue 9) made
Starlette's URL parsing raise deep inside a route: a 500. This middleware answers 400 to any Host
that is not `host[:port]` (a DNS name, an IPv4 address or a bracketed IPv6 address; a port of at
most 65535), to a request with two Host headers (RFC 9112 section 3.2), and, when
REGISTRAR_ALLOWED_HOSTS names hosts, to any other host, as Django's ALLOWED_HOSTS does: `name`
matches itself, `.example.edu` the domain and every subdomain, `*` anything. `/health` and
`/metrics` answer whatever well-formed Host they are called by (a load balancer checks by address).

Behind a proxy the peer is the proxy: `trusted_proxies` (REGISTRAR_TRUSTED_PROXIES, addresses or
CIDRs) names the peers whose X-Forwarded-For and X-Forwarded-Proto are believed, by uvicorn's own
ProxyHeadersMiddleware, which app.py puts outermost (the client is the right-most address that is
not a trusted proxy). By default none is: the client's address is the peer's, the headers are
ignored (`registrar serve` turns uvicorn's own handling off, so this is the one rule).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from registrar.core.problems import ProblemError
from registrar.http.problems import problem_response

MAX_HOST_BYTES = 255
# A DNS name (labels of letters, digits, `-`, `_`; RFC 1123 plus the underscore some internal
# names use) or an IPv4 address; optionally `:port`.
_NAME = re.compile(
    rb"^(?P<host>(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
    rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?)(?::(?P<port>[0-9]{1,5}))?$"
)
_BRACKETED = re.compile(rb"^\[(?P<ip>[0-9A-Fa-f:.]{2,45})\](?::(?P<port>[0-9]{1,5}))?$")
EXEMPT_PATHS = frozenset({"/health", "/metrics"})


def parse_host(value: bytes) -> str | None:
    """The host part of a Host header value, lowercased (IPv6 with its brackets); None when the
    value is not a well-formed `host[:port]`."""
    if not value or len(value) > MAX_HOST_BYTES:
        return None
    shape = _NAME.match(value)
    if shape is not None:
        host = shape.group("host").decode("ascii").lower().rstrip(".")
    else:
        shape = _BRACKETED.match(value)
        if shape is None:
            return None
        try:
            address = ipaddress.IPv6Address(shape.group("ip").decode("ascii"))
        except ValueError:
            return None
        host = f"[{address.compressed}]"
    port = shape.group("port")
    if port is not None and int(port) > 65535:
        return None
    return host


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Django's rule: `*` anything, `.example.edu` the domain and its subdomains, else exact."""
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith(".") and (host.endswith(pattern) or host == pattern[1:]):
            return True
    return False


def _refusal(detail: str) -> ASGIApp:
    return problem_response(ProblemError(400, detail, slug="invalid-host"))


class HostCheck:
    """400 problem+json for a malformed, repeated or (with allowed hosts) unknown Host."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str] = ()) -> None:
        self.app = app
        self.allowed = [h.strip() for h in allowed_hosts if h.strip()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = [value for name, value in scope["headers"] if name == b"host"]
        if len(values) > 1:
            await _refusal("The request has more than one Host header.")(scope, receive, send)
            return
        if values:
            host = parse_host(values[0])
            if host is None:
                await _refusal("The Host header is not a valid host[:port].")(scope, receive, send)
                return
        else:
            host = None  # HTTP/1.0 may omit it: URLs then use the server's own address
        if (
            self.allowed
            and scope["path"] not in EXEMPT_PATHS
            and (host is None or not host_allowed(host, self.allowed))
        ):
            await _refusal("This service does not answer to that host.")(scope, receive, send)
            return
        await self.app(scope, receive, send)
