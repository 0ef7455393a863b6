"""Settings, all read from REGISTRAR_* environment variables."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRAR_", extra="ignore")

    # Operators write plain URLs; db/engine.py picks the drivers.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'registrar.db'}")
    # Base of the absolute URLs put in task `path`; else the creating request's base URL.
    public_url: str | None = None

    max_body_bytes: int = 1024 * 1024
    db_pool_size: int = 8
    db_max_overflow: int = 8
    # Off by default: a dropped connection is replaced on the error that reveals it (one 503),
    # instead of costing every request an extra round trip.
    db_pool_pre_ping: bool = False
    sqlite_busy_timeout_ms: int = 10_000
    # NORMAL: durable across process crashes; FULL: across power loss too (an fsync per commit).
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    # Login service
    token_issuer: str = "registrar"  # noqa: S105 - a name, not a secret
    token_audience: str = "registrar-api"  # noqa: S105 - a name, not a secret
    token_lifetime_seconds: int = 3 * 3600
    token_leeway_seconds: int = 30
    # Hex or any string; when set, private signing keys are encrypted at rest with it.
    key_encryption_secret: str | None = None
    # How old a process's view of the service accounts may be: a revocation or a removed scope
    # reaches tokens already issued within this many seconds (auth/accounts.py; at most 60).
    account_refresh_seconds: float = Field(default=10.0, ge=0, le=60)
    # Failed logins (POST /api/jwt) per client address per minute; past it, 429. 0 = off.
    login_failures_per_minute: int = Field(default=20, ge=0)

    # Collections
    page_size_default: int = 100
    page_size_max: int = 1000
    # The deepest `?page=N` (from 1): an offset costs the rows it skips, so 10,000 pages of at most
    # 1,000 rows bound a request to 10 million. The `Link: rel="next"` chain pages by keyset
    # cursor and carries no page number, so it has no such limit.
    page_max: int = Field(default=10_000, ge=1)
    found_set_ttl_seconds: int = 24 * 3600
    # What one collection request may ask for (paging/filters.py says why; issue 9 item 1: 160
    # OR-ed wildcard terms per value x 50 values cost 7.3 s of CPU on 20,000 rows). Past any of
    # them: 400 naming the limit. A wildcard is one unescaped `*`; a term is one of a comma list
    # (at most 500 in one value: paging/filters.py).
    filter_terms_per_request: int = Field(default=1000, ge=1)
    filter_wildcards_per_value: int = Field(default=4, ge=0)
    filter_wildcards_per_request: int = Field(default=8, ge=0)
    query_string_max_bytes: int = Field(default=16384, ge=256)
    # A read's statement budget: SQLite's progress handler stops a read (on either lane) after
    # this long, PostgreSQL's statement_timeout a wide one; 400 `query-too-costly`. 0 = none.
    statement_budget_ms: int = Field(default=3000, ge=0)
    # Reads that are not selective (no equality on an indexed key: db/read_lanes.py) run at
    # most this many requests at once per process, on connections of their own, so that they
    # never hold the readers the selective ones need.
    wide_reads_at_once: int = Field(default=1, ge=1)

    # SQLite: point reads (an enrollment or petition by id) remembered until the database
    # changes, at most this many (db/read_cache.py); 0 turns it off.
    read_cache_entries: int = 10_000

    # Task queue
    task_lease_seconds: int = 30
    task_max_attempts: int = 5
    task_retention_days: int = 30
    # `registrar serve` runs a worker in-process unless --no-worker (or this is false).
    run_worker: bool = True
    worker_concurrency: int = 4
    worker_poll_seconds: float = 1.0
    # SQLite: after a wake-up, wait this long for more tasks so they share one batch (one commit)
    # instead of one batch per request under load. Adds at most this much latency to a task.
    worker_batch_linger_ms: float = 5.0
    task_retry_after_seconds: int = 1

    # SIS refresh (sis/refresh.py): the extract the workers reload, with --replace semantics,
    # whenever its modification time or size changed; looked at every this many seconds.
    sis_extract: Path | None = None
    sis_refresh_seconds: float = Field(default=1800.0, gt=0)

    # Webhooks (webhooks/): deliveries retry with exponential backoff from this first wait, up
    # to this many attempts; a subscription failing this long is disabled.
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=15, ge=1, le=100)
    webhook_disable_after_hours: float = Field(default=72.0, gt=0)
    # Private, loopback, link-local and other non-public targets are refused unless true.
    webhook_allow_private: bool = False
    # One attempt, from connecting to the last byte of the answer's head.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Deliveries in flight per worker process, and per subscription (so a receiver that hangs
    # holds at most this many of the process's slots).
    webhook_concurrency: int = Field(default=64, ge=1, le=1000)
    webhook_concurrency_per_subscription: int = Field(default=8, ge=1, le=100)

    # Events (GET /api/events): kept this many days; a cursor from before that gets 410.
    event_retention_days: int = Field(default=30, ge=1)

    # Operations
    # Requests per service account (token `sub`) per fixed one-minute window; 0 = off.
    rate_limit_per_minute: int = 0
    # PostgreSQL: send the shared count every N requests per process, and on every request near
    # the limit. 1 = every request (exact, but ~17% of a GET's cost); 20 keeps the overhead near
    # 1% at the price of an overshoot of at most 20 per other process.
    rate_limit_batch: int = 20
    # Origins allowed by CORS: a JSON list or a comma-separated string; empty = CORS off.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Host names this service answers to (the Host header), as Django's ALLOWED_HOSTS:
    # `api.example.edu`, `.example.edu` (the domain and its subdomains), `*`; empty = any host.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDRs, `*`);
    # empty = none: a client's address is the peer's (http/middleware/hosts.py).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    log_json: bool = True
    # Serve Prometheus text exposition at GET /metrics (and count requests).
    metrics_enabled: bool = True
    # When set, GET /metrics needs `Authorization: Bearer <this>`; else keep it on a private net.
    metrics_token: str | None = None
    # A client that starts a body and then stalls this long gets 408 (uvicorn has no such timer).
    body_timeout_seconds: float = 10.0
    # How long the API waits at start for an unreachable database before giving up.
    db_startup_timeout_seconds: float = 30.0
    # Retry-After sent with 503 when the database is unreachable.
    db_unavailable_retry_after_seconds: int = 5

    @field_validator("cors_origins", "allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [o.strip() for o in text.split(",") if o.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
