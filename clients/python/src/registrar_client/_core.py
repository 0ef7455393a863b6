"""The client's one implementation, free of I/O: requests, retries, tokens, paging, waiting.

Every operation is a generator that *yields* what it needs done and gets the result sent back:

    Send(...)       -> an httpx.Response (or the transport's exception thrown in)
    Sleep(seconds)  -> None
    Authorize(stale)-> a bearer header value, renewed if `stale` is the one in use

The sync client runs these with `httpx.Client` and `time.sleep` under a `threading.Lock`; the
async client with `httpx.AsyncClient` and `asyncio.sleep` under an `asyncio.Lock` (see
`_sync.py` and `_async.py`, which are only that and thin method wrappers). So the retry policy,
the token rules, request building, paging and parsing exist once, and behave the same in both.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
import platform
import random
import time
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote

import httpx

from ._version import __version__
from .errors import APIConnectionError, RegistrarError, error_for

T = TypeVar("T")

# --- effects -------------------------------------------------------------------------------


class Send:
    """Send one request; the driver answers with the response (body read)."""

    __slots__ = ("content", "headers", "method", "params", "timeout", "url")

    def __init__(
        self,
        method: str,
        url: str,
        params: tuple[tuple[str, str], ...] | None,
        headers: dict[str, str],
        content: bytes | None,
        timeout: httpx.Timeout,
    ) -> None:
        self.method = method
        self.url = url
        self.params = params
        self.headers = headers
        self.content = content
        self.timeout = timeout


class Sleep:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Authorize:
    """Get the bearer header; `stale` set means "this one was refused: renew unless someone
    already did". The driver serialises these under its lock and runs `Core.login()`."""

    __slots__ = ("stale",)

    def __init__(self, stale: str | None) -> None:
        self.stale = stale


Effect = Send | Sleep | Authorize
Op = Generator[Effect, Any, T]

# --- policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """When a request is tried again.

    Connection errors (for a write only because it carries an Idempotency-Key), and the
    statuses in `statuses` (429 and 503 first: the service says "later"), are retried up to
    `attempts` tries in all, waiting `Retry-After` when the answer has one, else an exponential
    backoff with jitter from `backoff` doubling up to `backoff_max`. No retry starts if its wait
    would end more than `total_seconds` after the first try: the error is raised at once instead
    (`RateLimited.retry_after` says how long the service asked for).
    """

    attempts: int = 5
    total_seconds: float = 60.0
    backoff: float = 0.5
    backoff_max: float = 8.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    def backoff_delay(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff * (2.0 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


# Transport errors after which the request surely never reached the server: safe to retry even
# a request that is not idempotent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport errors worth another try at all (not a malformed URL or a local protocol misuse).
_RETRYABLE = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)

RESERVED_PARAMETERS = frozenset({"page", "pagesize", "continuation_key", "cursor"})
LONG_POLL_MAX_TASK = 60  # GET /api/tasks/{id}?wait=S, S at most 60 (spec section 7)
LONG_POLL_MAX_EVENTS = 30  # GET /api/events?wait=S, S at most 30


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP-date (RFC 9110); None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, min(seconds, 86400.0))


# --- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A JWT from the login service and when to renew it (monotonic clock).

    The lifetime is the server's own `exp - iat`, counted from when the answer arrived here, so
    a client whose wall clock is off still renews in time (a 401 is renewed once anyway).
    """

    jwt: str
    header: str
    claims: dict[str, Any]
    accepted_scopes: list[str]
    renew_at: float
    expires_at: float

    @classmethod
    def from_login(cls, body: Any, received: float) -> Token:
        if not isinstance(body, dict) or not isinstance(body.get("jwt"), str):
            raise RegistrarError("The login service answered without a `jwt`.", title="Bad login")
        claims = body.get("payload")
        claims = claims if isinstance(claims, dict) else {}
        try:
            # `iat` is whole seconds, up to one before the token was made: count from there.
            lifetime = float(claims["exp"]) - float(claims["iat"]) - 1.0
        except (KeyError, TypeError, ValueError):
            lifetime = 300.0  # unknown: renew often rather than late
        lifetime = max(lifetime, 0.0)
        # Renew a minute early, or a fifth of the lifetime for short-lived tokens.
        margin = min(60.0, lifetime / 5)
        scopes = body.get("accepted_scopes")
        return cls(
            jwt=body["jwt"],
            header="Bearer " + body["jwt"],
            claims=claims,
            accepted_scopes=[str(s) for s in scopes] if isinstance(scopes, list) else [],
            renew_at=received + lifetime - margin,
            expires_at=received + lifetime,
        )


# --- pages ---------------------------------------------------------------------------------


@dataclass
class PageData:
    """One page of a collection as the server answered it."""

    items: list[Any]
    next_url: str | None
    total: int | None
    continuation_key: str | None
    ignored: list[str]


@dataclass
class EventsPage:
    items: list[Any]
    cursor: str | None


@dataclass
class WriteResult:
    """What a write answered: the task as far as known, and the key it was sent with."""

    task: dict[str, Any]
    idempotency_key: str
    status_code: int


class Core:
    """Configuration and state shared by every call of one client (either flavour)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        scopes: str | Sequence[str] | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key is required: the key `registrar clients create` printed")
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self.api_key = api_key.strip()
        self.base = str(url.copy_with(query=None, fragment=None)).rstrip("/")
        self.origin = (url.scheme, url.host, url.port)
        if isinstance(scopes, str):
            scopes = scopes.replace(",", " ").split()
        self.scopes = list(scopes) if scopes else []
        self.scope_param = " ".join(self.scopes) if self.scopes else None
        self.timeout = float(timeout)
        self.http_timeout = httpx.Timeout(self.timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self.headers = {
            "Accept": "application/json",
            "User-Agent": user_agent
            or f"registrar-client/{__version__} httpx/{httpx.__version__} "
            f"python/{platform.python_version()}",
        }
        # Sent with every request, unless the httpx client already sends them (ours does:
        # overriding a client's default header costs httpx a scan and a copy per request).
        self.request_headers: dict[str, str] = dict(self.headers)
        # Replaced whole (one reference swap), so it is safe to read without the lock.
        self.token: Token | None = None

    # --- URLs ---

    def url(self, path: str) -> str:
        return self.base + path

    def follow(self, link: str, current: str) -> str:
        """A `Link` target, resolved against the page it came from, on our own origin.

        The path and query are followed exactly as the server wrote them (pages are never
        recomputed); only the scheme, host and port are ours, so a token is never sent to
        another host, and a proxy that rewrites the Host header does not break paging.
        """
        target = httpx.URL(current).join(link)
        scheme, host, port = self.origin
        if (target.scheme, target.host, target.port) != self.origin:
            target = target.copy_with(scheme=scheme, host=host, port=port)
        return str(target)

    # --- tokens ---

    def bearer(self) -> str | None:
        """The current token's header, if it is not due for renewal."""
        token = self.token
        if token is not None and time.monotonic() < token.renew_at:
            return token.header
        return None

    def login(self) -> Op[Token]:
        """POST /api/jwt with the raw API key (and the wanted scopes)."""
        params = [("scope", self.scope_param)] if self.scope_param else None
        response = yield from self.call(
            "POST",
            self.url("/api/jwt"),
            params=params,
            headers={"Authorization": self.api_key},
            auth=False,
        )
        return Token.from_login(decode(response), time.monotonic())

    # --- the one request loop ---

    def call(
        self,
        method: str,
        url: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        resend_after_sent: bool = True,
        extra_timeout: float = 0.0,
        missing_ok_after_resend: bool = False,
    ) -> Op[httpx.Response]:
        """Send a request with the token, retrying per the policy; the response, or raise.

        `resend_after_sent=False` retries only failures that prove the request never left
        (a refused connection), for requests that are not safe to repeat.
        `missing_ok_after_resend`: a 404 to a request repeated after one that may have arrived
        is the first one's success (a DELETE).
        """
        policy = self.retry
        started = time.monotonic()
        query = tuple(params) if params else None
        content: bytes | None = None
        sent_headers = {**self.request_headers, **(headers or {})}
        if body is not None:
            # Encoded once: every retry sends the same bytes as the first try.
            content = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
            sent_headers["Content-Type"] = "application/json"
        timeout = self.http_timeout
        if extra_timeout:
            total = self.timeout + extra_timeout
            timeout = httpx.Timeout(self.timeout, read=total)
        attempt = 0
        renewed = False
        resent = False
        while True:
            attempt += 1
            bearer: str | None = None
            if auth:
                bearer = self.bearer()
                if bearer is None:
                    bearer = yield Authorize(None)
                sent_headers["Authorization"] = bearer
            try:
                response: httpx.Response = yield Send(
                    method, url, query, sent_headers, content, timeout
                )
            except _RETRYABLE as exc:
                safe = resend_after_sent or isinstance(exc, _NOT_SENT)
                delay = policy.backoff_delay(attempt)
                if not safe or not self._may_retry(attempt, started, delay):
                    raise APIConnectionError(
                        f"{method} {_path_of(url)} failed after {attempt} "
                        f"attempt{'s' if attempt > 1 else ''}: {exc!r}",
                        title="Connection failed",
                    ) from exc
                resent = resent or not isinstance(exc, _NOT_SENT)
                yield Sleep(delay)
                continue
            except httpx.TransportError as exc:
                raise APIConnectionError(f"{method} {_path_of(url)}: {exc!r}") from exc
            status = response.status_code
            if status < 400 or (status == 404 and resent and missing_ok_after_resend):
                return response
            if status == 401 and auth and not renewed:
                # An expired (or rotated-out) token: renew once and repeat, not counted as a try.
                renewed = True
                attempt -= 1
                yield Authorize(bearer)
                continue
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status in policy.statuses:
                delay = retry_after if retry_after is not None else policy.backoff_delay(attempt)
                if self._may_retry(attempt, started, delay):
                    yield Sleep(delay)
                    continue
            raise error_from(response, retry_after)

    def _may_retry(self, attempt: int, started: float, delay: float) -> bool:
        policy = self.retry
        return (
            attempt < policy.attempts and time.monotonic() + delay - started <= policy.total_seconds
        )

    # --- operations: reads ---

    def get(self, path: str) -> Op[Any]:
        response = yield from self.call("GET", self.url(path))
        return decode(response)

    def page(self, url: str, params: list[tuple[str, str]] | None) -> Op[PageData]:
        """One page of a collection: the records and where the next page is (Link)."""
        response = yield from self.call("GET", url, params=params)
        items = decode(response)
        if not isinstance(items, list):
            raise RegistrarError(
                "A collection answered something other than a JSON array.", title="Bad page"
            )
        link = response.links.get("next", {}).get("url")
        total = response.headers.get("X-Total-Count")
        ignored = response.headers.get("X-Ignored-Parameters")
        return PageData(
            items=items,
            next_url=self.follow(link, str(response.request.url)) if link else None,
            total=int(total) if total and total.isdigit() else None,
            continuation_key=response.headers.get("X-Request-ID"),
            ignored=[n for n in ignored.split(",") if n] if ignored else [],
        )

    # --- operations: writes and tasks ---

    def write(
        self,
        method: str,
        path: str,
        body: Any,
        idempotency_key: str | None,
        prefer_wait: float | None,
    ) -> Op[WriteResult]:
        """A queued write: 202 and a task to poll (or 200 and the finished task when the server
        honoured `Prefer: wait`). The Idempotency-Key makes every retry safe."""
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        check_idempotency_key(key)
        headers = {"Idempotency-Key": key}
        extra = 0.0
        if prefer_wait is not None:
            seconds = max(0, math.ceil(prefer_wait))
            headers["Prefer"] = f"wait={seconds}"
            extra = float(seconds)
        response = yield from self.call(
            method, self.url(path), body=body, headers=headers, extra_timeout=extra
        )
        return WriteResult(task_from_write(response), key, response.status_code)

    def get_task(self, task_id: str) -> Op[dict[str, Any]]:
        data = yield from self.get("/api/tasks/" + path_segment(task_id, "task id"))
        return expect_object(data, "task")

    def wait_task(
        self, task_id: str, timeout: float | None, poll_interval: float
    ) -> Op[tuple[dict[str, Any], bool]]:
        """Wait for a task to leave `accepted`: the task, and whether it finished in time.

        Asks the server to hold the answer (`?wait=S`, the long-poll). An answer that comes back
        early while the task is still `accepted` means the server did not hold it (a server
        without long-poll ignores `wait`): then poll, from `poll_interval` doubling up to the
        server's `Retry-After` (1 s when it suggests none).
        """
        url = self.url("/api/tasks/" + path_segment(task_id, "task id"))
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        delay = poll_interval
        while True:
            remaining = LONG_POLL_MAX_TASK if deadline is None else deadline - time.monotonic()
            # Tenths of a second (the server takes a number), never past the deadline by more
            # than a blink: the whole timeout is one held request, not a hold and then polls.
            hold = math.floor(min(LONG_POLL_MAX_TASK, max(0.0, remaining + 0.05)) * 10) / 10
            params = [("wait", f"{hold:g}")] if hold > 0 else None
            asked = time.monotonic()
            response = yield from self.call("GET", url, params=params, extra_timeout=hold)
            task = expect_object(decode(response), "task")
            if task.get("status") != "accepted":
                return task, True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return task, False
            if hold and now - asked >= hold * 0.8:
                continue  # the server held it as asked: ask again at once
            suggested = parse_retry_after(response.headers.get("Retry-After"))
            cap = max(poll_interval, suggested if suggested is not None else 1.0)
            pause = min(delay, cap)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - now))
            yield Sleep(pause)
            delay = min(delay * 2, cap)

    # --- operations: events ---

    def events(
        self,
        cursor: str | None,
        types: str | None,
        pagesize: int | None,
        follow: bool,
        wait: int,
        poll_interval: float,
    ) -> Op[EventsPage]:
        """The next events after `cursor`. Following, this returns only once there are events
        (long-polling `wait` seconds at a time, polling if the server does not hold); else an
        empty page means the feed's end for now."""
        url = self.url("/api/events")
        delay = poll_interval
        while True:
            params: list[tuple[str, str]] = []
            if cursor is not None:
                params.append(("after", cursor))
            if types:
                params.append(("type", types))
            if pagesize is not None:
                params.append(("pagesize", str(pagesize)))
            hold = wait if follow else 0
            if hold:
                params.append(("wait", str(hold)))
            asked = time.monotonic()
            response = yield from self.call("GET", url, params=params, extra_timeout=hold)
            items = decode(response)
            if not isinstance(items, list):
                raise RegistrarError("The events feed answered something other than an array.")
            after = next_events_cursor(response)
            if items and after is None:
                # Asking again from the same place would hand out the same events forever.
                raise RegistrarError(
                    "The events feed answered events without a next cursor "
                    "(X-Next-Cursor or Link).",
                    title="Bad page",
                )
            cursor = after or cursor
            if items or not follow:
                return EventsPage(items, cursor)
            if hold and time.monotonic() - asked >= hold * 0.8:
                delay = poll_interval
                continue
            yield Sleep(delay)
            delay = min(delay * 2, 5.0)


# --- helpers shared by both clients --------------------------------------------------------


def decode(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        raise RegistrarError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} with a body that is not JSON.",
            status=response.status_code,
            title="Bad response",
            headers=response.headers,
        ) from None


def error_from(response: httpx.Response, retry_after: float | None) -> RegistrarError:
    try:
        body: Any = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    return error_for(
        response.status_code,
        body,
        response.text if body is None else "",
        response.headers,
        response.reason_phrase,
        retry_after,
    )


def expect_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RegistrarError(f"Expected a JSON object for the {what}.", title="Bad response")
    return data


def task_from_write(response: httpx.Response) -> dict[str, Any]:
    """The task a write answered: the finished record (200 with `Prefer: wait`), else what the
    202 says (seed 000's incomplete sample: id, status, path and message)."""
    location = response.headers.get("Location") or response.headers.get("Content-Location")
    body = decode(response) if response.content else None
    if response.status_code == 200 and isinstance(body, dict) and "id" in body:
        return body
    if not location:
        raise RegistrarError(
            f"The write answered {response.status_code} without a Location.",
            status=response.status_code,
            title="Bad response",
        )
    task_id = httpx.URL(location).path.rstrip("/").rsplit("/", 1)[-1]
    task: dict[str, Any] = {"id": task_id, "status": "accepted", "path": None, "message": None}
    if isinstance(body, dict):
        task.update(body)
    return task


def next_events_cursor(response: httpx.Response) -> str | None:
    cursor = response.headers.get("X-Next-Cursor")
    if cursor:
        return str(cursor)
    link = response.links.get("next", {}).get("url")
    if link:
        for name, value in parse_qsl(httpx.URL(link).query.decode(), keep_blank_values=True):
            if name == "after":
                return value
    return None


def check_idempotency_key(key: str) -> None:
    if not (1 <= len(key) <= 255) or not all(" " <= ch <= "~" for ch in key):
        raise ValueError("idempotency_key must be 1 to 255 printable ASCII characters")


def path_segment(value: str, what: str) -> str:
    """An id as one path segment, percent-encoded; `.` and `..` would be path steps."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")
    return quote(value, safe="")


def _path_of(url: str) -> str:
    return httpx.URL(url).path


# --- filters -------------------------------------------------------------------------------

FilterValue = Any
Filters = Mapping[str, FilterValue] | Sequence[tuple[str, FilterValue]] | None


def literal(value: str) -> str:
    """`value` matched exactly: its wildcards, commas, backslashes and a leading operator
    escaped with a backslash, as the filter grammar says (spec section 3)."""
    out = []
    for i, ch in enumerate(value):
        if ch in "\\*," or (i == 0 and ch in "<>!="):
            out.append("\\")
        out.append(ch)
    return "".join(out)


def format_value(value: FilterValue) -> str:
    """A filter value as the query string wants it. Strings pass as they are (operators,
    wildcards and lists are the caller's: `"<202001"`, `"AAAS.*"`); booleans are true/false,
    None is null, datetimes ISO 8601 UTC, and a list/tuple/set means "any of"."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return utc_text(value, "filter value")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        members = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        if not members:
            raise ValueError("an empty list matches nothing; leave the filter out instead")
        return ",".join(_escape_member(format_value(m)) for m in members)
    raise TypeError(f"cannot use {type(value).__name__} as a filter value")


def _escape_member(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,")


def filter_params(
    filters: Filters, more: Mapping[str, FilterValue], pagesize: int | None
) -> list[tuple[str, str]]:
    """Query parameters from a mapping (or pairs, for the same name twice) and keywords, in
    which `__` stands for `.` (`term__sis_term_code="<202001"`)."""
    pairs: list[tuple[str, FilterValue]] = []
    given: object = filters
    if isinstance(given, (str, bytes)):
        raise TypeError("filters must be a mapping or a sequence of (name, value) pairs")
    if isinstance(filters, Mapping):
        pairs.extend(filters.items())
    elif filters is not None:
        pairs.extend(filters)
    pairs.extend((name.replace("__", "."), value) for name, value in more.items())
    params: list[tuple[str, str]] = []
    for name, value in pairs:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a filter name must be a non-empty string, not {name!r}")
        if name in RESERVED_PARAMETERS:
            raise ValueError(
                f"{name!r} is not a filter: pages follow the server's Link header"
                + ("; use pagesize=" if name == "pagesize" else "")
            )
        params.append((name, format_value(value)))
    if pagesize is not None:
        if isinstance(pagesize, bool) or not isinstance(pagesize, int) or pagesize < 1:
            raise ValueError("pagesize must be a positive integer")
        params.append(("pagesize", str(pagesize)))
    return params


# --- write payloads ------------------------------------------------------------------------

DateValue = str | dt.datetime | None


def utc_text(value: dt.datetime, what: str) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: give a timezone-aware datetime (the API keeps UTC)")
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def date_text(value: DateValue, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return utc_text(value, what)
    raise TypeError(f"{what} must be a datetime, an ISO 8601 string or None")


def course_assessment_body(submit_date: DateValue, opt_out_date: DateValue) -> dict[str, Any]:
    """PATCH body (seed 000): both keys, at most one set; both None clears the assessment."""
    if submit_date is not None and opt_out_date is not None:
        raise ValueError("set submit_date or opt_out_date, not both (both None clears it)")
    return {
        "course_assessment": {
            "submit_date": date_text(submit_date, "submit_date"),
            "opt_out_date": date_text(opt_out_date, "opt_out_date"),
        }
    }


def petition_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """POST body (seed 003): `{"petition": {...}}`, optional fields left out when None."""
    return {"petition": {k: v for k, v in fields.items() if v is not None}}


def event_types(types: str | Sequence[str] | None) -> str | None:
    if types is None:
        return None
    if isinstance(types, str):
        return types
    return ",".join(types)
