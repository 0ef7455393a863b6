"""Rate limiting per service account: N requests per fixed one-minute window, keyed by token `sub`.

Off by default (REGISTRAR_RATE_LIMIT_PER_MINUTE=0): the middleware is then not installed at all,
so an unlimited deployment pays nothing. When on:

- PostgreSQL: one statement per request, `INSERT ... ON CONFLICT DO UPDATE ... RETURNING count`,
  in autocommit on a small asyncpg pool of its own (prepared, no BEGIN/COMMIT: one round trip).
  REGISTRAR_RATE_LIMIT_BATCH=N (N > 1) trades exactness for cost: a process then sends its count
  every N requests of an account (or after a second), and every request once the account is
  within 10% of its limit, so the limit can be overshot by at most about N per other process.
  The table is UNLOGGED: counters are not worth WAL, and losing them in a crash only forgives one
  minute. Every API process shares the counts: P processes still allow the limit, not P x limit.
- SQLite: counters in process memory. SQLite deployments are one process (the database is a local
  file and the API runs one uvicorn process), and a write per request would queue every read behind
  SQLite's single writer lock.

Every limited answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (the
IETF httpapi draft's names); a refused one is `429` problem+json with `Retry-After`. If the counter
cannot be updated (database down), the request goes through: the route itself will answer 503, and
a limiter must not turn a database blip into a wall of 429s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registrar.core.problems import ProblemError
from registrar.db.engine import asyncpg_dsn, is_sqlite
from registrar.http.authentication import caller_sub
from registrar.http.problems import problem_response
from registrar.observability.metrics import RATE_LIMITED_TOTAL

log = logging.getLogger("registrar.ratelimit")

WINDOW_SECONDS = 60


class Counter(Protocol):
    async def hit(self, sub: str, window: int) -> int: ...

    async def close(self) -> None: ...


class MemoryCounter:
    """Counts in this process only (SQLite: one process)."""

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    async def hit(self, sub: str, window: int) -> int:
        if window != self._window:
            # A new minute: forget the old one wholesale; no per-key expiry to manage.
            self._window = window
            self._counts = {}
        count = self._counts.get(sub, 0) + 1
        self._counts[sub] = count
        return count

    async def close(self) -> None:
        return None


_UPSERT = (
    "INSERT INTO rate_limits (sub, window_start, count) VALUES ($1, $2, $3) "
    "ON CONFLICT (sub, window_start) DO UPDATE SET count = rate_limits.count + EXCLUDED.count "
    "RETURNING count"
)
_PURGE = "DELETE FROM rate_limits WHERE window_start < $1"


class DatabaseCounter:
    """Counts in the shared `rate_limits` table (PostgreSQL: every API process agrees).

    Straight on an asyncpg pool of its own, not through SQLAlchemy: the statement is fixed, and
    SQLAlchemy's per-execute work (compile cache, result wrapping, the adapter's transaction)
    cost ~4x the driver's own time here. asyncpg prepares the statement once per connection.
    Autocommit (no transaction block): one round trip. A connection that died is dropped by the
    pool on the error, and the request is let through (fail open).
    """

    def __init__(
        self, database_url: str, pool_size: int, *, limit: int = 0, batch: int = 1
    ) -> None:
        self.limit = limit
        self.batch = max(1, batch)
        # Batched mode: sub -> [count last seen in the table, hits not yet sent, time sent].
        self._window = -1
        self._local: dict[str, list[float]] = {}
        self.dsn = asyncpg_dsn(database_url)
        self.pool_size = pool_size
        self._pool: Any = None
        self._pool_lock: asyncio.Lock | None = None
        self._purged_window = -1
        self._purge_task: asyncio.Task[None] | None = None

    async def _get_pool(self) -> Any:
        # Created on first use, inside the server's event loop (create_app runs outside it).
        if self._pool is None:
            if self._pool_lock is None:
                self._pool_lock = asyncio.Lock()
            async with self._pool_lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=1,
                        max_size=self.pool_size,
                        timeout=5,
                        command_timeout=5,
                        max_inactive_connection_lifetime=300,
                    )
        return self._pool

    async def hit(self, sub: str, window: int) -> int:
        if self.batch == 1:
            return await self._send(sub, window, 1)
        if window != self._window:
            self._window = window
            self._local = {}
        entry = self._local.get(sub)
        if entry is None:
            return await self._send(sub, window, 1)
        entry[1] += 1
        estimate = int(entry[0] + entry[1])
        now = time.monotonic()
        if entry[1] >= self.batch or estimate >= self.limit * 0.9 or now - entry[2] > 1.0:
            return await self._send(sub, window, int(entry[1]))
        return estimate

    async def _send(self, sub: str, window: int, hits: int) -> int:
        pool = await self._get_pool()
        count = await pool.fetchval(_UPSERT, sub, window, hits)
        if self.batch > 1:
            self._local[sub] = [int(count), 0, time.monotonic()]
        if window != self._purged_window and (self._purge_task is None or self._purge_task.done()):
            # Once per minute per process, off the request's path: drop finished windows.
            self._purged_window = window
            self._purge_task = asyncio.create_task(self._purge(pool, window))
        return int(count)

    async def _purge(self, pool: Any, window: int) -> None:
        try:
            await pool.execute(_PURGE, window - 1)
        except Exception:
            log.warning("rate limit: could not purge old windows")

    async def close(self) -> None:
        if self._purge_task is not None:
            await asyncio.gather(self._purge_task, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def make_counter(database_url: str, pool_size: int, *, limit: int = 0, batch: int = 1) -> Counter:
    if is_sqlite(database_url):
        return MemoryCounter()
    return DatabaseCounter(database_url, pool_size, limit=limit, batch=batch)


class RateLimit:
    """Pure ASGI: counts requests that carry a valid bearer token; 429 past the limit."""

    def __init__(self, app: ASGIApp, *, limit: int, counter: Counter) -> None:
        self.app = app
        self.limit = limit
        self.counter = counter
        self._limit_raw = str(limit).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sub = await caller_sub(scope)
        if sub is None:
            # No valid token: the route answers 401 (or serves a public resource).
            await self.app(scope, receive, send)
            return
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        try:
            count = await self.counter.hit(sub, window)
        except Exception as exc:
            log.warning(
                "rate limit: counter unavailable (%s); letting the request through",
                type(exc).__name__,
            )
            await self.app(scope, receive, send)
            return
        remaining = max(0, self.limit - count)
        headers = [
            (b"ratelimit-limit", self._limit_raw),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]
        if count > self.limit:
            RATE_LIMITED_TOTAL.inc()
            response = problem_response(
                ProblemError(
                    429,
                    f"Over {self.limit} requests this minute for this account; retry in {reset} s.",
                    slug="rate-limited",
                    headers={"Retry-After": str(reset)},
                )
            )
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_limits)


def rate_limit_options(settings: Any) -> dict[str, Any]:
    """Middleware keyword arguments for `app.add_middleware(RateLimit, **...)`."""
    return {
        "limit": settings.rate_limit_per_minute,
        "counter": make_counter(
            settings.database_url,
            max(2, settings.db_pool_size // 2),
            limit=settings.rate_limit_per_minute,
            batch=settings.rate_limit_batch,
        ),
    }
