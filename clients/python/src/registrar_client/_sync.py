"""The blocking client: `Registrar`. Runs the shared operations with httpx.Client.

Everything here is I/O plumbing and one-line methods; the behaviour lives in `_core.py` and
`_operations.py`, shared with `AsyncRegistrar` (`_async.py` mirrors this file method for method;
a test checks that their signatures agree).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _operations as ops
from ._core import Authorize, Core, DateValue, Filters, Op, RetryPolicy, Send, Sleep, WriteResult
from .models import Delivery, Enrollment, Event, Petition, Record, TaskRecord, Webhook

T = TypeVar("T")
R = TypeVar("R", bound=Record)


class Registrar:
    """A client of the registrar API (blocking; safe to share between threads).

        with Registrar("http://127.0.0.1:8000", api_key) as registrar:
            enrollment = registrar.enrollments.get("AAAS.010.01-202001-U-10188-f002nkd-instructor")

    `scopes` narrows the token to some of the account's granted scopes (all of them when None).
    The token is fetched on first use and renewed before it expires. `timeout` bounds each
    request (long-polls add their wait); `retry` says what is retried and for how long (see
    `RetryPolicy`). Pass `http_client` to use your own `httpx.Client` (proxies, certificates,
    transports); it is then yours to close.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        scopes: str | Sequence[str] | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        user_agent: str | None = None,
    ) -> None:
        self._core = Core(
            base_url, api_key, scopes, timeout=timeout, retry=retry, user_agent=user_agent
        )
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.Client(headers=self._core.headers)
            self._core.request_headers = {}
        self._http = http_client
        self._lock = threading.Lock()
        self.enrollments = Enrollments(self)
        self.petitions = Petitions(self)
        self.students = Students(self)
        self.tasks = Tasks(self)
        self.events = Events(self)
        self.webhooks = Webhooks(self)

    # --- the driver: runs an operation's effects with blocking I/O ---

    def _run(self, op: Op[T]) -> T:
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
                        value = self._http.send(request)
                    except httpx.TransportError as exc:
                        error = exc
                elif isinstance(effect, Sleep):
                    time.sleep(effect.seconds)
                elif isinstance(effect, Authorize):
                    value = self._authorize(effect.stale)
        finally:
            op.close()

    def _authorize(self, stale: str | None) -> str:
        core = self._core
        with self._lock:
            token = core.token
            if token is not None:
                if stale is None and time.monotonic() < token.renew_at:
                    return token.header  # another thread renewed it while we waited
                if stale is not None and token.header != stale:
                    return token.header
            core.token = self._run(core.login())
            return core.token.header

    def _task(self, op: Op[WriteResult]) -> Task:
        return Task(self._run(op).task, self)

    # --- public ---

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Any other endpoint (`/api/petition_types`, ...), with the token and the retry policy.

        Raises the `RegistrarError` for an error answer. GET, HEAD, OPTIONS, PUT and DELETE are
        retried on connection errors; POST and PATCH only with an `idempotency_key`.
        """
        return self._run(
            ops.request(self._core, method, path, params, json, headers, idempotency_key)
        )

    @property
    def token_claims(self) -> dict[str, Any] | None:
        """The current token's claims (`sub`, `scope`, `exp`...), None before the first call."""
        token = self._core.token
        return dict(token.claims) if token is not None else None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Registrar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registrar({self._core.base!r})"


class Task(TaskRecord):
    """A task record with the client that can refresh it and wait for it."""

    __slots__ = ("_client",)

    def __init__(self, data: Mapping[str, Any], client: Registrar) -> None:
        super().__init__(data)
        self._client = client

    def refresh(self) -> Task:
        """The task's current record (a new object; this one is unchanged)."""
        return self._client.tasks.get(self.id)

    def wait(
        self,
        timeout: float | None = 60.0,
        *,
        raise_on_error: bool = True,
        poll_interval: float = 0.05,
    ) -> Task:
        """The finished task (`complete` or `error`), waiting up to `timeout` seconds (None: no
        limit) with the server's long-poll. Raises `TaskTimeout` if it is still `accepted`
        then, and `TaskFailed` if it ended `error` (unless `raise_on_error=False`)."""
        if self.get("status") != "accepted" and "request_date" in self:
            return ops.finished(self, True, timeout, raise_on_error)
        data, in_time = self._client._run(
            self._client._core.wait_task(self.id, timeout, poll_interval)
        )
        return ops.finished(Task(data, self._client), in_time, timeout, raise_on_error)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskRecord, (self._data,))  # a pickled task loses its client


class Paginator(ops.PagerState[R], Iterator[R]):
    """Every record of a collection, page after page along `Link: rel="next"`.

    Pages are fetched as you iterate. The found set is fixed by the first page, so a walk sees
    each record once even while the data changes. `total`, `continuation_key` and
    `ignored_parameters` are filled in by the first page; `pages()` walks page by page.
    """

    def __init__(self, client: Registrar, listing: ops.Listing[R]) -> None:
        super().__init__(listing)
        self._client = client
        self._records: Iterator[R] | None = None

    def pages(self) -> Iterator[ops.Page[R]]:
        while self._next is not None:
            url, params = self._next
            yield self._take(self._client._run(self._client._core.page(url, params)))

    def __next__(self) -> R:
        return next(self._stream())

    def __iter__(self) -> Iterator[R]:
        # The records' own generator: a for loop then runs without a Python-level __next__ per
        # record. next() and for loops share it, so either continues where the other stopped.
        return self._stream()

    def _stream(self) -> Iterator[R]:
        if self._records is None:
            self._records = self._each()
        return self._records

    def _each(self) -> Iterator[R]:
        for page in self.pages():
            yield from page
            del page  # let it go before the next is fetched: a walk holds one page, not two


class EventStream(ops.EventState, Iterator[Event]):
    """Events in commit order. Not following, it stops at the feed's current end; following,
    it long-polls for more, forever. Store `cursor` to resume later (`after=`)."""

    def __init__(self, client: Registrar, state_args: tuple[Any, ...]) -> None:
        super().__init__(*state_args)
        self._client = client

    def __next__(self) -> Event:
        while not self._buffer:
            if self._exhausted:
                raise StopIteration
            self._take(self._client._run(self._fetch(self._client._core)))
        return self._pop()

    def __iter__(self) -> EventStream:
        return self


class _Resource:
    __slots__ = ("_client", "_core")

    def __init__(self, client: Registrar) -> None:
        self._client = client
        self._core = client._core


class Enrollments(_Resource):
    """`/api/academic/enrollments` (needs `api:academic:enrollments:read`; writes `...:write`)."""

    def get(self, id: str) -> Enrollment:
        """One enrollment by id (`{section.id}-{netid}-{role}`); `NotFound` if unknown or hidden."""
        return self._client._run(ops.enrollment(self._core, id))

    def list(
        self, filters: Filters = None, /, *, pagesize: int | None = None, **more_filters: Any
    ) -> Paginator[Enrollment]:
        """Every enrollment matching the filters: a mapping (or (name, value) pairs, to give a
        name twice) and/or keywords with `__` for `.`; values carry the operators
        (`term__sis_term_code="<202001"`, `section__id="AAAS.*"`, `netid=["f1", "f2"]`)."""
        return Paginator(self._client, ops.enrollments(self._core, filters, pagesize, more_filters))

    def set_course_assessment(
        self,
        id: str,
        *,
        submit_date: DateValue = None,
        opt_out_date: DateValue = None,
        idempotency_key: str | None = None,
        prefer_wait: float | None = None,
    ) -> Task:
        """PATCH the enrollment's course_assessment (at most one date; neither clears it).

        Returns the queued `Task` (`.wait()` for the outcome). An Idempotency-Key is generated
        unless given, and every retry sends the same one. `prefer_wait=S` asks the server to
        answer with the finished task when it finishes within S seconds (`Prefer: wait=S`).
        """
        return self._client._task(
            ops.set_course_assessment(
                self._core, id, submit_date, opt_out_date, idempotency_key, prefer_wait
            )
        )


class Petitions(_Resource):
    """`/api/academic/petitions` (needs `api:academic:petitions:read`; create `...:write`)."""

    def get(self, id: str) -> Petition:
        """One petition by id (24 hex characters)."""
        return self._client._run(ops.petition(self._core, id))

    def list(
        self, filters: Filters = None, /, *, pagesize: int | None = None, **more_filters: Any
    ) -> Paginator[Petition]:
        """Every petition matching the filters (as `enrollments.list`), e.g. `netid="f006kdf"`."""
        return Paginator(self._client, ops.petitions(self._core, filters, pagesize, more_filters))

    def create(
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
    ) -> Task:
        """POST a petition (seed 003). The task checks the fields and ends `complete` (its
        `path` is the new petition's URL) or `error` naming each problem (`wait()` raises
        `TaskFailed`). Extra keyword fields are sent as they are."""
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
        return self._client._task(
            ops.create_petition(self._core, values, idempotency_key, prefer_wait)
        )


class Students(_Resource):
    """`/api/students/{netid}/...`."""

    def petitions(
        self,
        netid: str,
        filters: Filters = None,
        /,
        *,
        pagesize: int | None = None,
        **more_filters: Any,
    ) -> Paginator[Petition]:
        """One student's petitions (an unknown or hidden student has none)."""
        listing = ops.student_petitions(self._core, netid, filters, pagesize, more_filters)
        return Paginator(self._client, listing)


class Tasks(_Resource):
    """`/api/tasks/{id}`: any valid token; a task is visible only to the account that made it."""

    def get(self, id: str) -> Task:
        return Task(self._client._run(self._core.get_task(id)), self._client)

    def wait(self, id: str, timeout: float | None = 60.0, *, raise_on_error: bool = True) -> Task:
        """`tasks.get(id).wait(timeout)` in one call (and one request less)."""
        task = Task({"id": id, "status": "accepted"}, self._client)
        return task.wait(timeout, raise_on_error=raise_on_error)


class Events(_Resource):
    """`/api/events`: the change feed (spec section 7)."""

    def list(
        self,
        after: str | None = None,
        types: str | Sequence[str] | None = None,
        *,
        pagesize: int | None = None,
        follow: bool = False,
        wait: int = 30,
        poll_interval: float = 1.0,
    ) -> EventStream:
        """Events after the cursor `after` (from the oldest kept when None), of the given
        `types` (all when None). `follow=True` never ends: it long-polls `wait` seconds at a
        time for new events. The stream's `cursor` is where to resume."""
        args = (after, types, pagesize, follow, wait, poll_interval)
        return EventStream(self._client, args)


class Webhooks(_Resource):
    """`/api/webhooks`: subscriptions of this service account (spec section 7)."""

    def create(
        self,
        url: str,
        types: str | Sequence[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Webhook:
        """Subscribe `url` to the event `types`; the answer's `secret` is shown only now. An
        Idempotency-Key (generated unless given) makes a retry return the same subscription."""
        return self._client._run(ops.create_webhook(self._core, url, types, idempotency_key))

    def update(
        self,
        id: str,
        *,
        url: str | None = None,
        types: str | Sequence[str] | None = None,
        enable: bool = False,
    ) -> Webhook:
        """Change the subscription's `url` or `types`; `enable=True` enables a disabled one
        (its failures forgotten)."""
        return self._client._run(ops.update_webhook(self._core, id, url, types, enable))

    def list(self, *, pagesize: int | None = None) -> Paginator[Webhook]:
        return Paginator(self._client, ops.webhooks(self._core, pagesize))

    def get(self, id: str) -> Webhook:
        return self._client._run(ops.webhook(self._core, id))

    def delete(self, id: str) -> None:
        self._client._run(ops.delete_webhook(self._core, id))

    def deliveries(self, id: str, *, pagesize: int | None = None) -> Paginator[Delivery]:
        """Delivery attempts to this webhook, newest first."""
        return Paginator(self._client, ops.deliveries(self._core, id, pagesize))

    def retry_delivery(self, id: str, delivery_id: str) -> Record:
        """Send a delivery (`Delivery.id`) again now, with the same `webhook-id`; the queued
        delivery (`id`, `event`, `status`, `attempts`). `Conflict` while the subscription is
        disabled."""
        return self._client._run(ops.retry_delivery(self._core, id, delivery_id))


__all__ = ["EventStream", "Paginator", "Registrar", "Task"]
