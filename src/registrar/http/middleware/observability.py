"""What an operator sees of each request: a correlation id in and out, latency and count by route
template, one access-log line.

The middleware is pure ASGI (no BaseHTTPMiddleware: that one copies the body stream through a task
group and costs far more than the work done here). Per request it does: read or make a correlation
id, one `perf_counter` pair, one histogram observation and one counter increment, and one log line.
An incoming id is echoed only when it is short and plain, so a client cannot inject newlines or
megabytes into our logs.

A request whose client hung up before its answer was complete is recorded as status 499 ("client
closed request", nginx's code), in the log and the metrics alike, never as a 5xx: nothing failed on
our side, and false 500s set off alerts (issue 9 counted 118 in one run). The middleware notices
the `http.disconnect` a route's body read meets; any layer that learns it otherwise sets
`scope["state"][CLIENT_GONE]`.

Work whose client is gone is stopped (issue 9 item 1: eight abandoned wide reads went on for over
two minutes). A GET or HEAD has no body to read, so nothing would ever hear its client hang up:
here a watcher waits for the server's `http.disconnect` while the request runs and, if it comes
before the answer is complete, cancels the request's task. The cancelled read stops its statement
(db/database.py: SQLite's progress handler, asyncpg's cancel request) and the request ends as
499 like any other. Cost: one small task per GET.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registrar.http.authentication import authenticated, caller_sub
from registrar.observability.logs import correlation_id
from registrar.observability.metrics import REQUEST_LATENCY, REQUESTS_TOTAL

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_HEADER_RAW = CORRELATION_HEADER.lower().encode()
# Echo a caller's id only when it is plain: no spaces, no control characters, not huge.
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")


access_log = logging.getLogger("registrar.access")

UNMATCHED_ROUTE = "<unmatched>"
# Set in scope["state"] by whoever learns that the client went away before its answer.
CLIENT_GONE = "client_gone"
CLIENT_CLOSED_REQUEST = 499
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BODILESS = frozenset({"GET", "HEAD"})


def _replaying(first: Message, watcher: asyncio.Task[Message] | None, rest: Receive) -> Receive:
    """A receive that gives `first` (already read), then the watcher's message, or `rest`."""
    pending: Message | None = first

    async def receive() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        if watcher is not None:
            return await asyncio.shield(watcher)
        return await rest()

    return receive


def route_template(scope: Scope) -> str:
    """The path template FastAPI matched (`/api/tasks/{task_id}`): bounded label cardinality."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestObservability:
    """Correlation id in and out, latency and count by route template, one access-log line."""

    def __init__(self, app: ASGIApp, *, metrics: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = None
        for name, value in scope["headers"]:
            if name == _CORRELATION_HEADER_RAW:
                incoming = value
                break
        rid = incoming.decode() if incoming and _SANE_ID.match(incoming) else uuid.uuid4().hex
        rid_raw = rid.encode()
        token = correlation_id.set(rid)
        state = scope.setdefault("state", {})
        state["correlation_id"] = rid
        status = 500
        answered = False  # the whole answer was handed to the server

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-correlation-id", rid_raw)]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def noting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not answered:
                state[CLIENT_GONE] = True
            return message

        app_receive: Receive = noting_receive
        watcher: asyncio.Task[Message] | None = None
        task = asyncio.current_task()
        stopped = False  # the watcher cancelled this request's task
        if scope["method"] in _BODILESS:
            first = await receive()
            if first["type"] == "http.request" and not first.get("more_body", False):

                async def watch() -> Message:
                    nonlocal stopped
                    message = await receive()  # uvicorn: on disconnect, or once answered
                    if message["type"] == "http.disconnect" and not answered:
                        state[CLIENT_GONE] = True
                        if task is not None:
                            stopped = True
                            task.cancel()
                    return message

                watcher = asyncio.create_task(watch())
            app_receive = _replaying(first, watcher, noting_receive)

        try:
            await self.app(scope, app_receive, send_with_id)
        except asyncio.CancelledError:
            if not stopped or task is None:
                raise
            task.uncancel()  # our own doing: the client is gone, end as 499
        finally:
            if watcher is not None:
                watcher.cancel()
            elapsed = time.perf_counter() - start
            if not answered and state.get(CLIENT_GONE):
                status = CLIENT_CLOSED_REQUEST
            route = route_template(scope)
            client = authenticated(scope)
            sub = client.sub if client is not None else None
            if sub is None and status != 401 and access_log.isEnabledFor(logging.INFO):
                # A route that needs no token (a cached verification when one was sent).
                sub = await caller_sub(scope)
            if self.metrics:
                method = scope["method"]
                # A client may send any method token: keep the label set bounded.
                key = (method if method in _METHODS else "OTHER", route, status)
                children = self._children.get(key)
                if children is None:
                    # `labels()` takes a lock and builds a key each call; the label sets are few
                    # (routes x methods x statuses), so keep each pair of children once found.
                    labels = (key[0], route, str(status))
                    children = (REQUEST_LATENCY.labels(*labels), REQUESTS_TOTAL.labels(*labels))
                    self._children[key] = children
                children[0].observe(elapsed)
                children[1].inc()
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    route,
                    status,
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "request_id": rid,
                        "sub": sub,
                    },
                )
            correlation_id.reset(token)
