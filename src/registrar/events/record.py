"""Recording changes: `record(connection, changes)` in the transaction that makes them.

Commit order on PostgreSQL. A sequence hands out positions when rows are inserted, not when they
commit: a transaction holding position 10 may commit after another's 11, and a feed reader that has
already passed 11 would never see 10. So every transaction that records changes first takes one
transaction-scoped advisory lock, and records them as its last statements before COMMIT: positions
are then handed out in commit order, and the lock is held only from the insert to the commit.
SQLite has a single writer, which gives the same order for free.

A set-based writer (a load inserting its events from a staging table) calls `lock_commit_order`
itself, right before that INSERT, and keeps it the last statement of its transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, insert, text

from registrar.core.clock import utcnow
from registrar.db.notices import EVENTS_CHANNEL
from registrar.events.models import Event

# Any constant unique among the service's advisory locks (migrations use 7_402_731_115).
EVENTS_LOCK = 7_402_731_116

# The lock, and the NOTIFY that wakes the feed's long-polls in every process when this commits.
_LOCK = text("SELECT pg_advisory_xact_lock(:k), pg_notify(:c, '')").bindparams(
    k=EVENTS_LOCK, c=EVENTS_CHANNEL
)
_INSERT = insert(Event)

TYPES = (
    "enrollment.created",
    "enrollment.updated",
    "enrollment.deleted",
    "petition.created",
    "task.completed",
)
ORIGINS = ("sis", "api")


@dataclass(frozen=True)
class Change:
    type: str  # one of TYPES
    subject: str  # the resource id
    origin: str  # "sis" or "api"
    netid: str | None = None  # the person the record is about
    changed: tuple[str, ...] | None = None  # updates: the top-level keys that changed
    requester: str | None = None  # task.completed: the requester's sub


def lock_commit_order(connection: Connection) -> None:
    """Hold the events lock to the end of this transaction, and announce its events to the
    feed's waiters when it commits (PostgreSQL; nothing on SQLite)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK)


def record(
    connection: Connection, changes: Sequence[Change], time: dt.datetime | None = None
) -> None:
    """Record `changes` (one INSERT for all of them). Call it last in the transaction."""
    if not changes:
        return
    lock_commit_order(connection)
    when = time or utcnow()
    connection.execute(
        _INSERT,
        [
            {
                "type": c.type,
                "subject": c.subject,
                "origin": c.origin,
                "netid": c.netid,
                "changed": list(c.changed) if c.changed is not None else None,
                "requester": c.requester,
                "time": when,
            }
            for c in changes
        ],
    )
