"""Request body cap (413) and body read timeout (408), enforced while the body is read.

Both act inside `receive`: the moment a body grows past the cap, or a client that started a body
stops sending for `body_timeout` seconds, this middleware answers itself and raises to abort the
route. FastAPI turns any error raised while it reads the body into a 400, so the route's own answer
is swallowed: the client sees our 413/408, never a misleading 400. uvicorn has no timer for a
stalled body (its keep-alive timeout only runs between requests), hence the 408 here.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registrar.core.problems import ProblemError
from registrar.http.problems import problem_response


class BodyAborted(Exception):
    """Raised into the route after this middleware has answered for it."""


class BodyTooLarge(BodyAborted):
    pass


class BodyTimeout(BodyAborted):
    pass


class BodySizeLimit:
    """413 for bodies over the cap (declared or streamed); 408 for a body that stalls."""

    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout if body_timeout and body_timeout > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._too_large()(scope, receive, send)
                    return
        received = 0
        body_done = False
        response_started = False
        answered = False  # we sent our own 413/408: drop whatever the route sends afterwards

        async def answer(status: int) -> None:
            nonlocal answered
            if response_started or answered:
                return
            answered = True
            response = (
                self._too_large()
                if status == 413
                else problem_response(
                    ProblemError(
                        408,
                        f"The request body did not arrive within {self.body_timeout:g} s.",
                        slug="body-timeout",
                        headers={"Connection": "close"},
                    )
                )
            )
            await response(scope, receive, send)

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if body_done or self.body_timeout is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), self.body_timeout)
                except TimeoutError:
                    await answer(408)
                    raise BodyTimeout from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    body_done = True
                if received > self.max_bytes:
                    await answer(413)
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if answered:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except BodyAborted:
            if not answered:
                raise

    def _too_large(self) -> ASGIApp:
        return problem_response(
            ProblemError(
                413,
                f"The request body is larger than {self.max_bytes} bytes.",
                slug="body-too-large",
                # The rest of the body is never read: the connection cannot carry another request.
                headers={"Connection": "close"},
            )
        )
