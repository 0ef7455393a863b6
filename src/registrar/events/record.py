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
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, insert, text

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

# PostgreSQL: the lock, the NOTIFYs and every change of a transaction in ONE statement, the values
# side by side in arrays. The materialized CTE takes the lock before the first row is joined, so
# before the first position is drawn (the defaults' nextval runs in the projection above the join);
# and the lock is then held for one statement and the commit, not for a round trip per row.
# Measured (bench/task_bench.py --postgres --statements, 2026-12-02, 2 cores, PostgreSQL 15,
# 5,000 tasks, 2 workers): the lock statement and then an executemany of 200 rows per batch spent
# 0.49 ms/task waiting on this lock and 0.036 ms/task inserting, of 0.84 ms/task in all.
_INSERT_MANY = text(
    """
    WITH held AS MATERIALIZED (
        SELECT pg_advisory_xact_lock(:k) AS locked, pg_notify(:c, '') AS events,
            pg_notify(:also_channel, :also_payload) AS also
    )
    INSERT INTO events (type, subject, origin, netid, changed, requester, time)
    SELECT e.type, e.subject, e.origin, e.netid, CAST(e.changed AS json), e.requester, :time
    FROM unnest(CAST(:types AS text[]), CAST(:subjects AS text[]), CAST(:origins AS text[]),
                CAST(:netids AS text[]), CAST(:changed AS text[]), CAST(:requesters AS text[]))
        WITH ORDINALITY AS e(type, subject, origin, netid, changed, requester, n)
        CROSS JOIN held
    ORDER BY e.n
    """
).bindparams(
    bindparam("time", type_=Event.__table__.c.time.type),
    k=EVENTS_LOCK,
    c=EVENTS_CHANNEL,
)

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
    connection: Connection,
    changes: Sequence[Change],
    time: dt.datetime | None = None,
    *,
    notify: tuple[str, str] | None = None,
) -> None:
    """Record `changes` (one INSERT for all of them). Call it last in the transaction.

    `notify`: on PostgreSQL, one more NOTIFY (channel, payload) sent with them, in the same
    statement (the worker's finished tasks); nothing on SQLite, whose waiters are told in-process.
    """
    if not changes:
        return
    when = time or utcnow()
    if connection.dialect.name == "postgresql":
        also_channel, also_payload = notify or (EVENTS_CHANNEL, "")
        connection.execute(
            _INSERT_MANY,
            {
                "time": when,
                "also_channel": also_channel,
                "also_payload": also_payload,
                "types": [c.type for c in changes],
                "subjects": [c.subject for c in changes],
                "origins": [c.origin for c in changes],
                "netids": [c.netid for c in changes],
                "changed": [
                    json.dumps(list(c.changed)) if c.changed is not None else None for c in changes
                ],
                "requesters": [c.requester for c in changes],
            },
        )
        return
    lock_commit_order(connection)
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
