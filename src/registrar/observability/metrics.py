"""What an operator sees: a structured log line per request, a correlation id, Prometheus /metrics.

The middleware is pure ASGI (no BaseHTTPMiddleware: that one copies the body stream through a task
group and costs far more than the work done here). Per request it does: read or make a correlation
id, one `perf_counter` pair, one histogram observation and one counter increment, and one log line.

Correlation ids travel in `X-Correlation-ID`, because `X-Request-ID` already names found sets in
this API (spec section 3). An incoming id is echoed only when it is short and plain, so a client
cannot inject newlines or megabytes into our logs.

Several processes: every uvicorn process keeps its own request counters, so a scrape sees only the
process that answered it. Either scrape each process, or set PROMETHEUS_MULTIPROC_DIR (an empty
directory, cleared at deploy) before the processes start: prometheus_client then keeps its values in
shared files and /metrics aggregates every process. The task-queue figures are read from the
database at scrape time, so they are the same whichever process answers.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
import re
import sys
import time
import uuid
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registrar.core.settings import Settings
from registrar.http.middleware.security_headers import caller_sub

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_HEADER_RAW = CORRELATION_HEADER.lower().encode()
# Echo a caller's id only when it is plain: no spaces, no control characters, not huge.
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")

# The id of the request being served, for every log record emitted while serving it.
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "registrar_correlation_id", default=None
)

access_log = logging.getLogger("registrar.access")

# ---------------------------------------------------------------------------------------------
# Logs


# A JWT (three base64url parts, the first two JSON objects) or one of our API keys (rk_ + 43
# base64url characters). The service never logs them on purpose; this catches accidents, e.g. a
# library quoting a header in an exception message.
_SECRET_PATTERNS = re.compile(r"eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*|rk_[\w-]{20,}")


def redact(text: str) -> str:
    return _SECRET_PATTERNS.sub("[redacted]", text)


class ContextFilter(logging.Filter):
    """Stamps every record with the request's correlation id and scrubs anything secret-looking."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = correlation_id.get()
        if record.args:
            # Render now so that the scrub sees the final text.
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str) and ("eyJ" in record.msg or "rk_" in record.msg):
            record.msg = redact(record.msg)
        return True


# Attributes every LogRecord has; anything else on a record was passed in `extra=` and is logged.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        # orjson: a few microseconds per line instead of json's tens, on every request.
        return orjson.dumps(out, default=str).decode()


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


_HANDLER_MARK = "_registrar_handler"


def configure_logging(settings: Settings) -> None:
    """Route the `registrar` loggers to stderr, JSON or plain; idempotent (one app per test...)."""
    logger = logging.getLogger("registrar")
    logger.setLevel(settings.log_level.upper())
    for h in list(logger.handlers):
        if getattr(h, _HANDLER_MARK, False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JSONFormatter() if settings.log_json else PlainFormatter())
    logger.addHandler(handler)
    # JSON lines go to our handler only, so a root handler (uvicorn's, an operator's) cannot print
    # them a second time in another format. Plain mode keeps propagating for test tooling.
    logger.propagate = not settings.log_json


# ---------------------------------------------------------------------------------------------
# Metrics

_MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# Request metrics live in a registry of our own, so that several apps in one process (tests) share
# them rather than fighting over the global default registry's names.
REQUEST_REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_LATENCY = Histogram(
    "registrar_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REQUEST_REGISTRY,
)
REQUESTS_TOTAL = Counter(
    "registrar_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
    registry=REQUEST_REGISTRY,
)
RATE_LIMITED_TOTAL = Counter(
    "registrar_rate_limited_requests",
    "Requests refused with 429 by the per-account rate limit.",
    registry=REQUEST_REGISTRY,
)

UNMATCHED_ROUTE = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The path template FastAPI matched (`/api/tasks/{task_id}`): bounded label cardinality."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def _task_figures_registry(rows: list[tuple[str, int, dt.datetime | None]]) -> CollectorRegistry:
    """Task queue figures as read from the database a moment ago (a fresh registry per scrape)."""
    registry = CollectorRegistry(auto_describe=True)
    by_status = Gauge(
        "registrar_tasks",
        "Tasks in the table by status: accepted = queue depth; complete and error = outcomes "
        "(over the retention period).",
        ["status"],
        registry=registry,
    )
    oldest = Gauge(
        "registrar_task_oldest_accepted_age_seconds",
        "Age of the oldest task still accepted (0 when the queue is empty).",
        registry=registry,
    )
    up = Gauge(
        "registrar_database_up", "1 when the scrape could read the database.", registry=registry
    )
    for status in ("accepted", "complete", "error"):
        by_status.labels(status).set(0)
    now = dt.datetime.now(dt.UTC)
    age = 0.0
    for status, count, first in rows:
        by_status.labels(status).set(count)
        if status == "accepted" and first is not None:
            if first.tzinfo is None:
                first = first.replace(tzinfo=dt.UTC)
            age = max(0.0, (now - first).total_seconds())
    oldest.set(age)
    up.set(1)
    return registry


def _read_cache_registry(cache: Any) -> CollectorRegistry:
    """This process's read cache (read_cache.py): absent figures mean it is off."""
    registry = CollectorRegistry(auto_describe=True)
    if cache is None:
        return registry
    lookups = Gauge(
        "registrar_read_cache_lookups",
        "Point reads looked up in this process's read cache since it started, by result.",
        ["result"],
        registry=registry,
    )
    lookups.labels("hit").set(cache.hits)
    lookups.labels("miss").set(cache.misses)
    Gauge(
        "registrar_read_cache_entries", "Rows this process's read cache holds.", registry=registry
    ).set(len(cache))
    return registry


async def read_task_figures(request: Request) -> list[tuple[str, int, dt.datetime | None]] | None:
    """One grouped query on the tasks table; None when the database cannot be read."""
    from sqlalchemy import func, select

    from registrar.tasks.models import Task

    runtime = request.app.state.runtime
    try:
        async with runtime.db.reading() as session:
            result = await session.execute(
                select(Task.status, func.count(), func.min(Task.request_date)).group_by(Task.status)
            )
            return [(str(s), int(c), m) for s, c, m in result.all()]
    except Exception:  # metrics must answer even when the database does not
        logging.getLogger("registrar.metrics").warning("metrics: cannot read task figures")
        return None


async def metrics_endpoint(request: Request) -> Response:
    settings: Settings = request.app.state.runtime.settings
    if settings.metrics_token:
        # Constant-time, like every secret comparison in the service.
        import hmac

        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode()):
            return Response(
                "metrics need the metrics token\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
    if _MULTIPROC:
        from prometheus_client import multiprocess

        request_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(request_registry)
        parts = [generate_latest(request_registry)]
    else:
        parts = [generate_latest(REQUEST_REGISTRY)]
    parts.append(generate_latest(_read_cache_registry(request.app.state.runtime.db.read_cache)))
    rows = await read_task_figures(request)
    if rows is None:
        down = CollectorRegistry()
        Gauge(
            "registrar_database_up", "1 when the scrape could read the database.", registry=down
        ).set(0)
        parts.append(generate_latest(down))
    else:
        parts.append(generate_latest(_task_figures_registry(rows)))
    return Response(b"".join(parts), media_type=CONTENT_TYPE_LATEST)


# ---------------------------------------------------------------------------------------------
# The middleware


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

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-correlation-id", rid_raw)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            sub = state.get("sub")
            if sub is None and status != 401 and access_log.isEnabledFor(logging.INFO):
                # The rate limiter (when on) already knew it; else a cached verification.
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
