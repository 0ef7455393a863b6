"""The task table: both the queue workers claim from and the record clients poll."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from registrar.core.clock import utcnow
from registrar.db.base import Base, UTCDateTime


class TaskStatus(StrEnum):
    """Where a task stands, as its record and the API say: `accepted` until a worker finishes it."""

    ACCEPTED = "accepted"
    COMPLETE = "complete"
    ERROR = "error"


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), nullable=False)  # "academic.enrollments"
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # "PATCH", "POST"
    resource_id: Mapped[str | None] = mapped_column(String(256))
    payload: Mapped[Any] = mapped_column(JSON, nullable=True)
    requester: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    sub: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    # Whether the requester may see confidential people: decided once, at request time.
    private_scope: Mapped[bool] = mapped_column(default=False, nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default=TaskStatus.ACCEPTED.value
    )
    request_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    completed_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    path: Mapped[str | None] = mapped_column(Text)
    worker_data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    # Where the absolute `path` URLs point, captured from the request (a worker has none).
    base_url: Mapped[str] = mapped_column(Text, nullable=False)
    called_url: Mapped[str] = mapped_column(Text, nullable=False)
    # The X-Correlation-ID of the request that queued it: the worker logs the task under it.
    correlation_id: Mapped[str | None] = mapped_column(String(128))

    # Queue bookkeeping.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=5)
    run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    locked_by: Mapped[str | None] = mapped_column(String(255))
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # The claim query reads only unfinished tasks, oldest due first.
        Index(
            "ix_tasks_queue",
            "run_at",
            sqlite_where=text("status = 'accepted'"),
            postgresql_where=text("status = 'accepted'"),
        ),
        Index("ix_tasks_status_completed", "status", "completed_date"),
    )


class IdempotencyKey(Base):
    """Idempotency-Key on writes: the same key and body from the same sub answer the same 202."""

    __tablename__ = "idempotency_keys"

    sub: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    task_id: Mapped[str] = mapped_column(String(24), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, nullable=False, index=True
    )
