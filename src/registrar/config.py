"""Settings, all read from REGISTRAR_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRAR_", extra="ignore")

    # Operators write plain URLs; db.py picks the async driver.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'registrar.db'}")
    # Base of the absolute URLs put in task `path`; else the creating request's base URL.
    public_url: str | None = None

    max_body_bytes: int = 1024 * 1024
    db_pool_size: int = 10
    db_max_overflow: int = 10
    sqlite_busy_timeout_ms: int = 10_000

    # Login service
    token_issuer: str = "registrar"
    token_audience: str = "registrar-api"
    token_lifetime_seconds: int = 3 * 3600
    token_leeway_seconds: int = 30
    # Hex or any string; when set, private signing keys are encrypted at rest with it.
    key_encryption_secret: str | None = None

    # Collections
    page_size_default: int = 100
    page_size_max: int = 1000
    found_set_ttl_seconds: int = 24 * 3600

    # Task queue
    task_lease_seconds: int = 30
    task_max_attempts: int = 5
    task_retention_days: int = 30
    # `registrar serve` runs a worker in-process unless --no-worker (or this is false).
    run_worker: bool = True
    worker_concurrency: int = 4
    worker_poll_seconds: float = 1.0
    task_retry_after_seconds: int = 1

    # Operations
    rate_limit_per_minute: int = 0  # 0 = off
    cors_origins: list[str] = Field(default_factory=list)
    log_level: str = "INFO"
    log_json: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
