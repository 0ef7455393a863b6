"""The asyncio client: `AsyncRegistrar`. Runs the shared operations with httpx.AsyncClient.

The mirror of `_sync.py`, method for method (a test checks that their signatures agree); the
behaviour lives in `_core.py` and `_operations.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _operations as ops
from ._core import Authorize, Core, DateValue, Filters, Op, RetryPolicy, Send, Sleep, WriteResult
from .models import Delivery, Enrollment, Event, Petition, Record, TaskRecord, Webhook

T = TypeVar("T")
R = TypeVar("R", bound=Record)


class AsyncRegistrar:
    """A client of the registrar API for asyncio; the same methods as `Registrar`, awaitable.

        async with AsyncRegistrar("http://127.0.0.1:8000", api_key) as registrar:
            enrollment = await registrar.enrollments.get(enrollment_id)
            async for petition in registrar.petitions.list(netid="f006kdf"):
                ...

    Safe to share between tasks of one event loop (one token renewal at a time).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        scopes: str | Sequence[str] | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        user_agent: str | None = None,
    ) -> None:
        self._core = Core(
            base_url, api_key, scopes, timeout=timeout, retry=retry, user_agent=user_agent
        )
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(headers=self._core.headers)
            self._core.request_headers = {}
        self._http = http_client
        # Made on first use, inside the loop (an asyncio.Lock made outside one binds to the
        # wrong loop on Python 3.9, and costs nothing).
        self._lock: asyncio.Lock | None = None
        self.enrollments = AsyncEnrollments(self)
        self.petitions = AsyncPetitions(self)
        self.students = AsyncStudents(self)
        self.tasks = AsyncTasks(self)
        self.events = AsyncEvents(self)
        self.webhooks = AsyncWebhooks(self)

    # --- the driver: runs an operation's effects with asyncio I/O ---

    async def _run(self, op: Op[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    effect = op.send(value) if error is None else op.throw(error)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                value = error = None
                if isinstance(effect, Send):
                    request = self._http.build_request(
                        effect.method,
                        effect.url,
                        params=effect.params,
                        headers=effect.headers,
                        content=effect.content,
                        timeout=effect.timeout,
                    )
                    try:
                        value = await self._http.send(request)
                    except httpx.TransportError as exc:
                        error = exc
                elif isinstance(effect, Sleep):
                    await asyncio.sleep(effect.seconds)
                elif isinstance(effect, Authorize):
                    value = await self._authorize(effect.stale)
        finally:
            op.close()

    async def _authorize(self, stale: str | None) -> str:
        core = self._core
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            token = core.token
            if token is not None:
                if stale is None and time.monotonic() < token.renew_at:
                    return token.header  # another task renewed it while we waited
                if stale is not None and token.header != stale:
                    return token.header
            core.token = await self._run(core.login())
            return core.token.header

    async def _task(self, op: Op[WriteResult]) -> AsyncTask:
        return AsyncTask((await self._run(op)).task, self)

    # --- public ---

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Any other endpoint, with the token and the retry policy (see `Registrar.request`)."""
        return await self._run(
            ops.request(self._core, method, path, params, json, headers, idempotency_key)
        )

    @property
    def token_claims(self) -> dict[str, Any] | None:
        """The current token's claims (`sub`, `scope`, `exp`...), None before the first call."""
        token = self._core.token
        return dict(token.claims) if token is not None else None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncRegistrar:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncRegistrar({self._core.base!r})"


class AsyncTask(TaskRecord):
    """A task record with the client that can refresh it and wait for it (awaitable)."""

    __slots__ = ("_client",)

    def __init__(self, data: Mapping[str, Any], client: AsyncRegistrar) -> None:
        super().__init__(data)
        self._client = client

    async def refresh(self) -> AsyncTask:
        """The task's current record (a new object; this one is unchanged)."""
        return await self._client.tasks.get(self.id)

    async def wait(
        self,
        timeout: float | None = 60.0,
        *,
        raise_on_error: bool = True,
        poll_interval: float = 0.05,
    ) -> AsyncTask:
        """The finished task; see `Task.wait`."""
        if self.get("status") != "accepted" and "request_date" in self:
            return ops.finished(self, True, timeout, raise_on_error)
        data, in_time = await self._client._run(
            self._client._core.wait_task(self.id, timeout, poll_interval)
        )
        return ops.finished(AsyncTask(data, self._client), in_time, timeout, raise_on_error)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskRecord, (self._data,))  # a pickled task loses its client


class AsyncPaginator(ops.PagerState[R], AsyncIterator[R]):
    """Every record of a collection along `Link: rel="next"` (`async for`); see `Paginator`."""

    def __init__(self, client: AsyncRegistrar, listing: ops.Listing[R]) -> None:
        super().__init__(listing)
        self._client = client
        self._page: list[R] = []
        self._index = 0

    async def pages(self) -> AsyncIterator[ops.Page[R]]:
        while self._next is not None:
            url, params = self._next
            yield self._take(await self._client._run(self._client._core.page(url, params)))

    async def __anext__(self) -> R:
        while self._index >= len(self._page):
            if self._next is None:
                raise StopAsyncIteration
            url, params = self._next
            self._page = []  # let it go before the next is fetched: one page held, not two
            self._page = self._take(await self._client._run(self._client._core.page(url, params)))
            self._index = 0
        record = self._page[self._index]
        self._index += 1
        return record

    def __aiter__(self) -> AsyncPaginator[R]:
        return self


class AsyncEventStream(ops.EventState, AsyncIterator[Event]):
    """Events in commit order (`async for`); see `EventStream`."""

    def __init__(self, client: AsyncRegistrar, state_args: tuple[Any, ...]) -> None:
        super().__init__(*state_args)
        self._client = client

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._exhausted:
                raise StopAsyncIteration
            self._take(await self._client._run(self._fetch(self._client._core)))
        return self._pop()

    def __aiter__(self) -> AsyncEventStream:
        return self


class _AsyncResource:
    __slots__ = ("_client", "_core")

    def __init__(self, client: AsyncRegistrar) -> None:
        self._client = client
        self._core = client._core


class AsyncEnrollments(_AsyncResource):
    """`/api/academic/enrollments`; see `Enrollments`."""

    async def get(self, id: str) -> Enrollment:
        return await self._client._run(ops.enrollment(self._core, id))

    def list(
        self, filters: Filters = None, /, *, pagesize: int | None = None, **more_filters: Any
    ) -> AsyncPaginator[Enrollment]:
        listing = ops.enrollments(self._core, filters, pagesize, more_filters)
        return AsyncPaginator(self._client, listing)

    async def set_course_assessment(
        self,
        id: str,
        *,
        submit_date: DateValue = None,
        opt_out_date: DateValue = None,
        idempotency_key: str | None = None,
        prefer_wait: float | None = None,
    ) -> AsyncTask:
        return await self._client._task(
            ops.set_course_assessment(
                self._core, id, submit_date, opt_out_date, idempotency_key, prefer_wait
            )
        )


class AsyncPetitions(_AsyncResource):
    """`/api/academic/petitions`; see `Petitions`."""

    async def get(self, id: str) -> Petition:
        return await self._client._run(ops.petition(self._core, id))

    def list(
        self, filters: Filters = None, /, *, pagesize: int | None = None, **more_filters: Any
    ) -> AsyncPaginator[Petition]:
        listing = ops.petitions(self._core, filters, pagesize, more_filters)
        return AsyncPaginator(self._client, listing)

    async def create(
        self,
        *,
        netid: str,
        petition_code: str,
        origin_code: str,
        school: str,
        grade_term: str,
        decision: str | None = None,
        user_netid: str | None = None,
        idempotency_key: str | None = None,
        prefer_wait: float | None = None,
        **fields: Any,
    ) -> AsyncTask:
        values = {
            "netid": netid,
            "petition_code": petition_code,
            "origin_code": origin_code,
            "school": school,
            "decision": decision,
            "grade_term": grade_term,
            "user_netid": user_netid,
            **fields,
        }
        return await self._client._task(
            ops.create_petition(self._core, values, idempotency_key, prefer_wait)
        )


class AsyncStudents(_AsyncResource):
    """`/api/students/{netid}/...`; see `Students`."""

    def petitions(
        self,
        netid: str,
        filters: Filters = None,
        /,
        *,
        pagesize: int | None = None,
        **more_filters: Any,
    ) -> AsyncPaginator[Petition]:
        listing = ops.student_petitions(self._core, netid, filters, pagesize, more_filters)
        return AsyncPaginator(self._client, listing)


class AsyncTasks(_AsyncResource):
    """`/api/tasks/{id}`; see `Tasks`."""

    async def get(self, id: str) -> AsyncTask:
        return AsyncTask(await self._client._run(self._core.get_task(id)), self._client)

    async def wait(
        self, id: str, timeout: float | None = 60.0, *, raise_on_error: bool = True
    ) -> AsyncTask:
        task = AsyncTask({"id": id, "status": "accepted"}, self._client)
        return await task.wait(timeout, raise_on_error=raise_on_error)


class AsyncEvents(_AsyncResource):
    """`/api/events`; see `Events`."""

    def list(
        self,
        after: str | None = None,
        types: str | Sequence[str] | None = None,
        *,
        pagesize: int | None = None,
        follow: bool = False,
        wait: int = 30,
        poll_interval: float = 1.0,
    ) -> AsyncEventStream:
        args = (after, types, pagesize, follow, wait, poll_interval)
        return AsyncEventStream(self._client, args)


class AsyncWebhooks(_AsyncResource):
    """`/api/webhooks`; see `Webhooks`."""

    async def create(
        self,
        url: str,
        types: str | Sequence[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Webhook:
        return await self._client._run(ops.create_webhook(self._core, url, types, idempotency_key))

    async def update(
        self,
        id: str,
        *,
        url: str | None = None,
        types: str | Sequence[str] | None = None,
        enable: bool = False,
    ) -> Webhook:
        return await self._client._run(ops.update_webhook(self._core, id, url, types, enable))

    def list(self, *, pagesize: int | None = None) -> AsyncPaginator[Webhook]:
        return AsyncPaginator(self._client, ops.webhooks(self._core, pagesize))

    async def get(self, id: str) -> Webhook:
        return await self._client._run(ops.webhook(self._core, id))

    async def delete(self, id: str) -> None:
        await self._client._run(ops.delete_webhook(self._core, id))

    def deliveries(self, id: str, *, pagesize: int | None = None) -> AsyncPaginator[Delivery]:
        return AsyncPaginator(self._client, ops.deliveries(self._core, id, pagesize))

    async def retry_delivery(self, id: str, delivery_id: str) -> Record:
        return await self._client._run(ops.retry_delivery(self._core, id, delivery_id))


__all__ = ["AsyncEventStream", "AsyncPaginator", "AsyncRegistrar", "AsyncTask"]
