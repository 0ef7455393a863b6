"""Every statement on the change record that is not the recording itself: a reader's page, the
retention horizon, pruning, the newest position."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Table,
    Text,
    and_,
    delete,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy import (
    cast as sql_cast,
)

from registrar.events.models import Event
from registrar.people import ferpa

EVENTS = cast(Table, Event.__table__)
E = EVENTS.c


def page(
    connection: Connection,
    *,
    after: int,
    types: Sequence[str],
    requester: str,
    sees_private: bool,
    shown_changes: Sequence[str],
    limit: int,
    flips_since: int = 0,
) -> list[Row[Any]]:
    """The next `limit` events after `after` that a reader may see, in commit order.

    Everything that decides whether an event is shown is a condition here, so a page is full
    whenever more remain (its length says nothing about what was left out): the types the reader
    may read, `task.completed` of its own tasks only, the FERPA rule on the event's person, and
    (`shown_changes`, the representation's top-level keys the reader may see) updates that
    changed at least one of those. Keyset on the primary key: page 1,000 costs what page 1 does.

    A confidentiality flip (an update naming `confidential`, not a key of the representation)
    changes nothing a private reader sees, so it is not shown to one. A reader without the private
    scope is shown it (as a removal or a creation: events/service.py) when the person is visible
    now, or when the flip came after its reading began (`flips_since`): otherwise the record left
    its view before it could have seen it, and the event would only name a confidential
    person's record.
    """
    stored = list(types)
    shown_as = {"enrollment.created", "enrollment.deleted"} & set(types)
    if not sees_private and shown_as and "enrollment.updated" not in stored:
        stored.append("enrollment.updated")  # flips, shown as a creation or a removal
    conditions: list[ColumnElement[bool]] = [E.position > after, E.type.in_(stored)]
    if "task.completed" in types:
        conditions.append(or_(E.type != "task.completed", E.requester == requester))
    # `changed` is a JSON list of key names; each name appears in its text in quotes, however
    # the writer spaced it, so a LIKE per key asks "did any of them change" in SQL.
    text = sql_cast(E.changed, Text)
    update = and_(E.type == "enrollment.updated", E.changed.is_not(None))
    touched = or_(*(text.like(f'%"{key}"%') for key in shown_changes))
    only_hidden = and_(update, ~touched)
    if sees_private:
        conditions.append(not_(only_hidden))
    else:
        flip = and_(update, text.like('%"confidential"%'))
        (visible,) = ferpa.visible_with(False, E.netid)
        conditions.append(
            or_(and_(visible, or_(not_(only_hidden), flip)), and_(flip, E.position > flips_since))
        )
        # A flip is filtered by the type it is shown as (events/service.py `project`: a creation
        # when the person is visible now, else a removal), never as the update it is stored as:
        # a mirror of creations and removals alone stays exact, a reader of updates gets updates.
        typed = [and_(E.type.in_(list(types)), not_(flip))]
        if "enrollment.created" in shown_as:
            typed.append(and_(flip, visible))
        if "enrollment.deleted" in shown_as:
            typed.append(and_(flip, not_(visible)))
        conditions.append(or_(*typed))
    query = select(EVENTS).where(*conditions).order_by(E.position).limit(limit)
    return list(connection.execute(query))


def horizon(connection: Connection, cutoff: dt.datetime) -> int:
    """The newest position older than `cutoff`: that event and every one before it are past
    retention (0 when none is). A reader's cursor from before it missed events: 410. Cheap: the
    time index holds only the rows expired since the last prune, plus the one `prune` keeps."""
    # `position + 0`, not `position`: with max(position) SQLite (and PostgreSQL can) walk the
    # primary key backwards from the newest event looking for one older than the cutoff, through
    # every kept event when none is: 150 to 220 ms a page on a million events (bench/feed_bench.py),
    # the feed's time growing with the events kept. The expression makes it a range on the time
    # index (covering on SQLite, which keeps the rowid in it): ~0 ms, whatever the count.
    oldest = select(func.max(E.position + 0)).where(E.time < cutoff)
    return int(connection.scalar(oldest) or 0)


def prune(connection: Connection, cutoff: dt.datetime) -> int:
    """Delete the events past retention but the newest of them, which stays as the horizon's mark.

    Positions have gaps (a rolled-back PostgreSQL transaction uses its sequence values), so the
    oldest position kept cannot tell a reader whether it missed anything; the kept row can."""
    mark = horizon(connection, cutoff)
    if not mark:
        return 0
    result = connection.execute(delete(EVENTS).where(E.position < mark))
    return int(getattr(result, "rowcount", 0) or 0)


def newest_position(connection: Connection) -> int:
    return int(connection.scalar(select(func.max(E.position))) or 0)
