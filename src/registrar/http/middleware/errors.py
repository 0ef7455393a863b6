"""The last resort: an exception no handler took still gets a problem+json 500 from inside the
middleware stack, so it carries the correlation id and the security headers."""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registrar.http.middleware.observability import CLIENT_GONE
from registrar.http.problems import internal_error

log = logging.getLogger("registrar.errors")


class UnhandledErrors:
    """Answers 500 problem+json for an exception no handler took, inside our other middleware.

    Starlette sends that 500 from its outermost layer, past every middleware, so the answer would
    lack the correlation id and the security headers. Caught here, it gets both, and the log line
    carries the request's correlation id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            await send(message)
            # Only once the server took it: uvicorn refuses a start with a bad header value (a
            # control character from a path parameter, say), and a 500 can still be sent then.
            if message["type"] == "http.response.start":
                started = True

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # The client hung up before its body arrived: no one to answer, nothing went wrong
            # (the access log and the metrics record a 499).
            scope.setdefault("state", {})[CLIENT_GONE] = True
            log.info("client went away before sending its whole request")
        except Exception:
            if scope.get("state", {}).get(CLIENT_GONE):
                # Whatever broke once the client had gone (a cancelled query, a closed stream)
                # has no one to answer: recorded as 499, not as our error.
                log.info("client went away; the request stopped", exc_info=True)
                return
            if started:
                raise
            log.exception("unhandled error")
            await internal_error()(scope, receive, send)
