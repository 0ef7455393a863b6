"""The API's operations, once for both clients: which URL, which body, which model.

Each function returns an operation (a generator of effects, see `_core.py`) or, for collections,
a `Listing` that says where the first page is. `_sync.py` and `_async.py` run them.
"""

from __future__ import annotations

import uuid
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

import httpx

from ._core import (
    LONG_POLL_MAX_EVENTS,
    Core,
    DateValue,
    EventsPage,
    Filters,
    Op,
    PageData,
    WriteResult,
    check_idempotency_key,
    course_assessment_body,
    decode,
    event_types,
    expect_object,
    filter_params,
    path_segment,
    petition_body,
)
from .errors import TaskFailed, TaskTimeout
from .models import Delivery, Enrollment, Event, Petition, Record, TaskRecord, Webhook

R = TypeVar("R", bound=Record)
TaskT = TypeVar("TaskT", bound=TaskRecord)

ENROLLMENTS = "/api/academic/enrollments"
PETITIONS = "/api/academic/petitions"
WEBHOOKS = "/api/webhooks"


class RegistrarWarning(UserWarning):
    """Something the caller probably did not mean, e.g. a filter the server ignored."""


# --- single records ------------------------------------------------------------------------


def get_record(core: Core, path: str, model: type[R], what: str) -> Op[R]:
    response = yield from core.call("GET", core.url(path))
    return model(expect_object(decode(response), what))


def enrollment(core: Core, enrollment_id: str) -> Op[Enrollment]:
    path = f"{ENROLLMENTS}/{path_segment(enrollment_id, 'enrollment id')}"
    return get_record(core, path, Enrollment, "enrollment")


def petition(core: Core, petition_id: str) -> Op[Petition]:
    path = f"{PETITIONS}/{path_segment(petition_id, 'petition id')}"
    return get_record(core, path, Petition, "petition")


def webhook(core: Core, webhook_id: str) -> Op[Webhook]:
    path = f"{WEBHOOKS}/{path_segment(webhook_id, 'webhook id')}"
    return get_record(core, path, Webhook, "webhook")


# --- collections ---------------------------------------------------------------------------


class Listing(Generic[R]):
    """Where a collection starts, and the model of its records."""

    __slots__ = ("model", "params", "url")

    def __init__(self, url: str, params: list[tuple[str, str]] | None, model: type[R]) -> None:
        self.url = url
        self.params = params
        self.model = model


def enrollments(
    core: Core, filters: Filters, pagesize: int | None, more: Mapping[str, Any]
) -> Listing[Enrollment]:
    return Listing(core.url(ENROLLMENTS), filter_params(filters, more, pagesize), Enrollment)


def petitions(
    core: Core, filters: Filters, pagesize: int | None, more: Mapping[str, Any]
) -> Listing[Petition]:
    return Listing(core.url(PETITIONS), filter_params(filters, more, pagesize), Petition)


def student_petitions(
    core: Core, netid: str, filters: Filters, pagesize: int | None, more: Mapping[str, Any]
) -> Listing[Petition]:
    url = core.url(f"/api/students/{path_segment(netid, 'netid')}/petitions")
    return Listing(url, filter_params(filters, more, pagesize), Petition)


def webhooks(core: Core, pagesize: int | None) -> Listing[Webhook]:
    return Listing(core.url(WEBHOOKS), filter_params(None, {}, pagesize) or None, Webhook)


def deliveries(core: Core, webhook_id: str, pagesize: int | None) -> Listing[Delivery]:
    url = core.url(f"{WEBHOOKS}/{path_segment(webhook_id, 'webhook id')}/deliveries")
    return Listing(url, filter_params(None, {}, pagesize) or None, Delivery)


class Page(list[R], Generic[R]):
    """One page of records, with what the server said about the whole found set."""

    total: int | None
    continuation_key: str | None
    next_url: str | None
    ignored_parameters: list[str]


class PagerState(Generic[R]):
    """What both paginators know: the position in the Link chain and the found set's facts."""

    def __init__(self, listing: Listing[R]) -> None:
        self._listing = listing
        self._next: tuple[str, list[tuple[str, str]] | None] | None = (
            listing.url,
            listing.params,
        )
        #: X-Total-Count of the found set (after the first page).
        self.total: int | None = None
        #: The found set's name (X-Request-ID): `continuation_key` pages the same set.
        self.continuation_key: str | None = None
        #: Filters the server ignored (unknown, or not visible to the token's scopes).
        self.ignored_parameters: list[str] = []
        self._warned = False

    def _take(self, data: PageData) -> Page[R]:
        model = self._listing.model
        page: Page[R] = Page([model(x) if type(x) is dict else x for x in data.items])
        page.total = data.total
        page.continuation_key = data.continuation_key
        page.next_url = data.next_url
        page.ignored_parameters = data.ignored
        if self.total is None:
            self.total = data.total
        self.continuation_key = data.continuation_key or self.continuation_key
        if data.ignored and not self._warned:
            self._warned = True
            self.ignored_parameters = data.ignored
            warnings.warn(
                f"the server ignored {', '.join(data.ignored)} (an unknown attribute, or one "
                "this token's scopes do not show): the results are not filtered by it",
                RegistrarWarning,
                stacklevel=4,
            )
        self._next = (data.next_url, None) if data.next_url else None
        return page


# --- events --------------------------------------------------------------------------------


class EventState:
    """Both event streams' position. `cursor` is where to resume after what was handed out:
    it moves to a page's end once the page's last event has been returned, so storing it after
    handling each event and resuming from it repeats at most the rest of one page (deliveries
    are at-least-once; events have unique ids)."""

    def __init__(
        self,
        after: str | None,
        types: str | Sequence[str] | None,
        pagesize: int | None,
        follow: bool,
        wait: int,
        poll_interval: float,
    ) -> None:
        if pagesize is not None and (not isinstance(pagesize, int) or pagesize < 1):
            raise ValueError("pagesize must be a positive integer")
        if not 0 <= wait <= LONG_POLL_MAX_EVENTS:
            raise ValueError(
                f"wait must be 0 to {LONG_POLL_MAX_EVENTS} seconds (what the server holds at most)"
            )
        self.cursor = after
        self._types = event_types(types)
        self._pagesize = pagesize
        self._follow = follow
        self._wait = wait
        self._poll_interval = poll_interval
        self._buffer: deque[Event] = deque()
        self._page_end: str | None = None
        self._exhausted = False

    def _fetch(self, core: Core) -> Op[EventsPage]:
        return core.events(
            self.cursor, self._types, self._pagesize, self._follow, self._wait, self._poll_interval
        )

    def _take(self, page: EventsPage) -> None:
        if not page.items:
            self.cursor = page.cursor
            self._exhausted = not self._follow
            return
        self._buffer.extend(Event(x) for x in page.items if isinstance(x, dict))
        self._page_end = page.cursor
        if not self._buffer:
            self.cursor = page.cursor

    def _pop(self) -> Event:
        event = self._buffer.popleft()
        if not self._buffer:
            self.cursor = self._page_end
        return event


# --- writes and tasks ----------------------------------------------------------------------


def set_course_assessment(
    core: Core,
    enrollment_id: str,
    submit_date: DateValue,
    opt_out_date: DateValue,
    idempotency_key: str | None,
    prefer_wait: float | None,
) -> Op[WriteResult]:
    body = course_assessment_body(submit_date, opt_out_date)
    path = f"{ENROLLMENTS}/{path_segment(enrollment_id, 'enrollment id')}"
    return core.write("PATCH", path, body, idempotency_key, prefer_wait)


def create_petition(
    core: Core,
    fields: Mapping[str, Any],
    idempotency_key: str | None,
    prefer_wait: float | None,
) -> Op[WriteResult]:
    return core.write("POST", PETITIONS, petition_body(fields), idempotency_key, prefer_wait)


def finished(task: TaskT, in_time: bool, timeout: float | None, raise_on_error: bool) -> TaskT:
    """What `Task.wait()` hands back: the task, or TaskTimeout / TaskFailed."""
    if not in_time:
        raise TaskTimeout(task, timeout if timeout is not None else 0.0)
    if raise_on_error and task.get("status") == "error":
        raise TaskFailed(task)
    return task


# --- webhooks management -------------------------------------------------------------------


def create_webhook(
    core: Core, url: str, types: str | Sequence[str] | None, idempotency_key: str | None
) -> Op[Webhook]:
    """POST /api/webhooks with an Idempotency-Key (generated unless given): a retry after a
    connection cut gets the same 201, secret included, instead of a second subscription."""
    body: dict[str, Any] = {"url": url}
    if types is not None:
        body["types"] = [types] if isinstance(types, str) else list(types)
    key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
    check_idempotency_key(key)
    response = yield from core.call(
        "POST", core.url(WEBHOOKS), body=body, headers={"Idempotency-Key": key}
    )
    return Webhook(expect_object(decode(response), "webhook"))


def update_webhook(
    core: Core,
    webhook_id: str,
    url: str | None,
    types: str | Sequence[str] | None,
    enable: bool,
) -> Op[Webhook]:
    """PATCH the subscription: what is given is set (so repeating it is harmless)."""
    body: dict[str, Any] = {}
    if url is not None:
        body["url"] = url
    if types is not None:
        body["types"] = [types] if isinstance(types, str) else list(types)
    if enable:
        body["status"] = "active"
    if not body:
        raise ValueError("give url, types or enable=True")
    path = f"{WEBHOOKS}/{path_segment(webhook_id, 'webhook id')}"
    response = yield from core.call("PATCH", core.url(path), body=body)
    return Webhook(expect_object(decode(response), "webhook"))


def retry_delivery(core: Core, webhook_id: str, delivery_id: str) -> Op[Record]:
    """POST .../deliveries/{id}/retry: the delivery queued to be sent again now. Not repeated
    once it may have arrived (that would queue it twice)."""
    path = (
        f"{WEBHOOKS}/{path_segment(webhook_id, 'webhook id')}/deliveries/"
        f"{path_segment(delivery_id, 'delivery id')}/retry"
    )
    response = yield from core.call("POST", core.url(path), resend_after_sent=False)
    return Record(expect_object(decode(response), "delivery"))


def delete_webhook(core: Core, webhook_id: str) -> Op[None]:
    url = core.url(f"{WEBHOOKS}/{path_segment(webhook_id, 'webhook id')}")
    # A DELETE repeated after a lost answer finds nothing: that is success, not NotFound.
    yield from core.call("DELETE", url, missing_ok_after_resend=True)
    return None


# --- the escape hatch ----------------------------------------------------------------------

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def request(
    core: Core,
    method: str,
    path: str,
    params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None,
    json_body: Any,
    headers: Mapping[str, str] | None,
    idempotency_key: str | None,
) -> Op[httpx.Response]:
    method = method.upper()
    sent = dict(headers or {})
    resend = method in _SAFE_METHODS
    if idempotency_key is not None:
        sent["Idempotency-Key"] = idempotency_key
        resend = True
    url = core.url(path) if path.startswith("/") else core.follow(path, core.base + "/")
    pairs: list[tuple[str, str]] | None = None
    if params is not None:
        items = params.items() if isinstance(params, Mapping) else params
        pairs = [(str(k), str(v)) for k, v in items]
    return core.call(
        method, url, params=pairs, body=json_body, headers=sent, resend_after_sent=resend
    )
