"""Prometheus figures: request latency and counts (kept per process), and the figures read at scrape
time (the task queue, from the database, so the same whichever process answers; this process's read
cache).

Several processes: every uvicorn process keeps its own request counters, so a scrape sees only the
process that answered it. Either scrape each process, or set PROMETHEUS_MULTIPROC_DIR (an empty
directory, cleared at deploy) before the processes start: prometheus_client then keeps its values in
shared files and /metrics aggregates every process.
"""

from __future__ import annotations

import datetime as dt
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from registrar.db.database import Database
from registrar.db.read_cache import ReadCache
from registrar.sis.refresh import RefreshStatus
from registrar.tasks.models import TaskStatus

TaskFigures = list[tuple[str, int, dt.datetime | None]]

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


def _task_figures_registry(rows: TaskFigures) -> CollectorRegistry:
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
    for known in TaskStatus:
        by_status.labels(known).set(0)
    now = dt.datetime.now(dt.UTC)
    age = 0.0
    for status, count, first in rows:
        by_status.labels(status).set(count)
        if status == TaskStatus.ACCEPTED and first is not None:
            if first.tzinfo is None:
                first = first.replace(tzinfo=dt.UTC)
            age = max(0.0, (now - first).total_seconds())
    oldest.set(age)
    up.set(1)
    return registry


def _read_cache_registry(cache: ReadCache | None) -> CollectorRegistry:
    """This process's read cache (db/read_cache.py): absent figures mean it is off."""
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


def _sis_refresh_registry(status: RefreshStatus) -> CollectorRegistry:
    """The scheduled SIS refresh (sis/refresh.py), as recorded in the database."""
    registry = CollectorRegistry(auto_describe=True)
    if status.last_ok is not None and status.last_ok.finished_at is not None:
        Gauge(
            "registrar_sis_refresh_last_success_timestamp_seconds",
            "When the last successful SIS refresh committed (Unix time).",
            registry=registry,
        ).set(status.last_ok.finished_at.timestamp())
    last = Gauge(
        "registrar_sis_refresh_last_attempt",
        "1 for the outcome of the newest SIS refresh attempt (ok, failed, running).",
        ["outcome"],
        registry=registry,
    )
    for outcome in ("ok", "failed", "running"):
        last.labels(outcome).set(
            1 if status.last is not None and status.last.status == outcome else 0
        )
    Gauge(
        "registrar_sis_refresh_failures",
        "SIS refresh attempts that failed (a bad extract: nothing was changed), ever recorded.",
        registry=registry,
    ).set(status.failures)
    return registry


def _reads_registry(db: Database) -> CollectorRegistry:
    """This process's read lanes and statement stops (db/database.py `read_wide`)."""
    registry = CollectorRegistry(auto_describe=True)
    stopped = Gauge(
        "registrar_reads_stopped",
        "Reads this process stopped since it started: `budget` ran past "
        "REGISTRAR_STATEMENT_BUDGET_MS; `client_gone` had a caller that hung up.",
        ["reason"],
        registry=registry,
    )
    stopped.labels("budget").set(db.stops.budget)
    stopped.labels("client_gone").set(db.stops.client_gone)
    Gauge(
        "registrar_wide_reads_running",
        "Wide reads (not selective) running now on this process's wide lane.",
        registry=registry,
    ).set(db.wide_in_flight)
    Gauge(
        "registrar_wide_reads_at_once",
        "How many wide reads this process runs at a time (REGISTRAR_WIDE_READS_AT_ONCE).",
        registry=registry,
    ).set(db.wide_at_once)
    return registry


def exposition(
    read_cache: ReadCache | None,
    task_figures: TaskFigures | None,
    *,
    writes_failing: bool = False,
    reads: Database | None = None,
    sis_refresh: RefreshStatus | None = None,
) -> bytes:
    """The text a scrape gets: this process's (or every process's) request figures, the read
    cache's, the task queue's as read a moment ago (None: the database could not be read),
    whether storage is refusing this process's writes (db/write_health.py), and the scheduled
    SIS refresh's record (when one is configured and could be read)."""
    if _MULTIPROC:
        from prometheus_client import multiprocess

        request_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(request_registry)  # type: ignore[no-untyped-call]
        parts = [generate_latest(request_registry)]
    else:
        parts = [generate_latest(REQUEST_REGISTRY)]
    parts.append(generate_latest(_read_cache_registry(read_cache)))
    if reads is not None:
        parts.append(generate_latest(_reads_registry(reads)))
    writes = CollectorRegistry()
    Gauge(
        "registrar_database_writes_failing",
        "1 while storage refuses this process's writes (full disk, read-only, I/O error): until "
        "30 s pass without such a failure.",
        registry=writes,
    ).set(1 if writes_failing else 0)
    parts.append(generate_latest(writes))
    if task_figures is None:
        down = CollectorRegistry()
        Gauge(
            "registrar_database_up", "1 when the scrape could read the database.", registry=down
        ).set(0)
        parts.append(generate_latest(down))
    else:
        parts.append(generate_latest(_task_figures_registry(task_figures)))
    if sis_refresh is not None:
        parts.append(generate_latest(_sis_refresh_registry(sis_refresh)))
    return b"".join(parts)
