"""The feed: which events a reader may see, and each as the CloudEvent it is shown (spec 7).

`visible_events` is the one projection (event row + current resource + reader -> CloudEvent), for
the feed (GET /api/events) and for webhooks (a service account's current grants as the reader).
`data` is built when read, from the resource as it is now and as the reader may see it: the
sensitive keys only with read.sensitive, nothing about a confidential person without
urn:dartmouth:people:private, `data.changed` cut to the keys the reader sees (an update that
changed only hidden keys is not shown at all), `{id}` for a resource that is gone, and a task's
record only to its requester. What decides whether an event is shown is SQL (events/repository.py),
so pages are full and their sizes say nothing; the resources come by id, one query per kind a page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row

from registrar.auth.client import Client
from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    PEOPLE_PRIVATE,
    PETITIONS_READ,
)
from registrar.auth.service import shared_secret
from registrar.core.clock import iso_z_micro, utcnow
from registrar.core.problems import ProblemError, bad_request, forbidden
from registrar.core.runtime import Runtime
from registrar.enrollments import repository as enrollments_repo
from registrar.enrollments import service as enrollments
from registrar.events import repository
from registrar.events.cursors import SECRET_NAME, EventKeys
from registrar.events.record import TYPES
from registrar.petitions import repository as petitions_repo
from registrar.petitions import service as petitions
from registrar.tasks import repository as tasks_repo
from registrar.tasks import service as tasks

# The scope each type needs; task.completed needs none (only the requester sees its own).
TYPE_SCOPES: dict[str, str | None] = {
    "enrollment.created": ENROLLMENTS_READ,
    "enrollment.updated": ENROLLMENTS_READ,
    "enrollment.deleted": ENROLLMENTS_READ,
    "petition.created": PETITIONS_READ,
    "task.completed": None,
}
assert tuple(TYPE_SCOPES) == TYPES
# CloudEvents `source`: the collection the subject belongs to (a URI-reference).
SOURCES = {
    "enrollment": "/api/academic/enrollments",
    "petition": "/api/academic/petitions",
    "task": "/api/tasks",
}
MAX_WAIT_SECONDS = 30


@dataclass(frozen=True)
class Reader:
    """Who reads: a token's sub and scopes (the feed), or a service account's current grants
    (webhooks)."""

    sub: str
    scopes: frozenset[str]

    @classmethod
    def of(cls, client: Client) -> Reader:
        return cls(client.sub, frozenset(client.scopes))

    @property
    def sensitive(self) -> bool:
        return ENROLLMENTS_READ_SENSITIVE in self.scopes

    @property
    def private(self) -> bool:
        return PEOPLE_PRIVATE in self.scopes

    def may_read(self, event_type: str) -> bool:
        scope = TYPE_SCOPES[event_type]
        return scope is None or scope in self.scopes

    def readable(self, types: Collection[str] | None = None) -> list[str]:
        return [t for t in (types or TYPES) if self.may_read(t)]


def parse_types(raw: Sequence[str], reader: Reader) -> list[str]:
    """`type=T1,T2` (repeatable): 400 for a type that does not exist, 403 for one the reader's
    scopes do not let it read; none: every type it may read."""
    asked = [t.strip() for value in raw for t in value.split(",") if t.strip()]
    if not asked:
        return reader.readable()
    unknown = [t for t in asked if t not in TYPE_SCOPES]
    if unknown:
        raise bad_request(
            "Unknown event type.",
            [f"type: {t[:64]!r} is not one of {', '.join(TYPES)}" for t in unknown[:5]],
        )
    missing = {TYPE_SCOPES[t] for t in asked if not reader.may_read(t)}
    if missing:
        raise forbidden(sorted(s for s in missing if s))
    return list(dict.fromkeys(asked))


def visible_events(
    connection: Connection,
    reader: Reader,
    after: int,
    types: Sequence[str],
    limit: int,
    keys: EventKeys,
    flips_since: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """The next `limit` events after position `after` as `reader` may see them, and the position
    to continue after (`after` itself when there are none). One query for the events, then one
    per kind of resource they name. `flips_since`: where the reader's reading began (the
    repository's `page` says why)."""
    types = reader.readable(types)
    if not types or limit <= 0:
        return [], after
    rows = repository.page(
        connection,
        after=after,
        types=types,
        requester=reader.sub,
        sees_private=reader.private,
        shown_changes=_shown_keys(reader),
        limit=limit,
        flips_since=flips_since,
    )
    if not rows:
        return [], after
    current = _current_resources(connection, rows, reader)
    events = [project(row, current.get((row.type, row.subject)), reader, keys) for row in rows]
    return events, int(rows[-1].position)


def _current_resources(
    connection: Connection, rows: list[Row[Any]], reader: Reader
) -> dict[tuple[str, str], Row[Any]]:
    """Each named resource as it is now, if the reader may see it: one query per kind."""
    wanted: dict[str, list[str]] = {"enrollment": [], "petition": [], "task": []}
    for row in rows:
        if row.type != "enrollment.deleted":
            wanted[row.type.split(".")[0]].append(row.subject)
    found: dict[tuple[str, str], Row[Any]] = {}
    if wanted["enrollment"]:
        for key, value in enrollments_repo.visible_enrollments(
            connection, wanted["enrollment"], reader.private
        ).items():
            found["enrollment.created", key] = found["enrollment.updated", key] = value
    if wanted["petition"]:
        for key, value in petitions_repo.visible_petitions(
            connection, wanted["petition"], reader.private
        ).items():
            found["petition.created", key] = value
    if wanted["task"]:
        for key, value in tasks_repo.tasks_of(connection, wanted["task"], reader.sub).items():
            found["task.completed", key] = value
    return found


def project(
    row: Row[Any], resource: Row[Any] | None, reader: Reader, keys: EventKeys
) -> dict[str, Any]:
    """One event as the CloudEvent this reader is shown (the rows already passed its filter)."""
    kind = row.type.split(".")[0]
    event_type = row.type
    data: dict[str, Any]
    if row.type == "enrollment.updated" and not reader.private and _flipped(row):
        # A confidentiality flip, to a reader without the private scope: the record entered its
        # view (it sees the person now) or left it. Shown as what it is to this reader, so a
        # mirror that applies it holds what the collection answers.
        event_type = "enrollment.created" if resource is not None else "enrollment.deleted"
    if resource is None:  # deleted, gone since, or out of this reader's view
        data = {"id": row.subject}
    elif kind == "enrollment":
        data = enrollments.represent(resource, sensitive=reader.sensitive)
    elif kind == "petition":
        data = petitions.represent(resource)
    else:
        data = tasks.represent(resource)
    if event_type == "enrollment.updated":
        shown = data.keys() if resource is not None else _shown_keys(reader)
        data["changed"] = [k for k in (row.changed or ()) if k in shown]
    return {
        "specversion": "1.0",
        "id": keys.event_id(row.position),
        "source": SOURCES[kind],
        "type": event_type,
        "time": iso_z_micro(row.time),
        "subject": row.subject,
        "origin": row.origin,
        "data": data,
    }


def _flipped(row: Row[Any]) -> bool:
    return "confidential" in (row.changed or ())


def _shown_keys(reader: Reader) -> tuple[str, ...]:
    if reader.sensitive:
        return enrollments.PUBLIC_KEYS + enrollments.SENSITIVE_KEYS
    return enrollments.PUBLIC_KEYS


# --- the feed over HTTP's needs (the router parses and answers) ---------------------------------


def gone() -> ProblemError:
    return ProblemError(
        410,
        "The cursor is older than the oldest event kept; read the feed again from its start "
        "(no `after`) after resynchronising from the collections.",
        slug="cursor-expired",
    )


@dataclass
class FeedPage:
    events: list[dict[str, Any]]
    next_position: int
    # Where the reader's reading began: the newest position when it first read without a cursor.
    since: int = 0


def _read_page(
    connection: Connection,
    reader: Reader,
    after: int | None,
    types: Sequence[str],
    limit: int,
    keys: EventKeys,
    cutoff: dt.datetime,
    since: int | None,
) -> FeedPage:
    """A page from `after` (None: the oldest kept event, and the reading begins now: `since`
    is the newest position); 410 for a cursor from before the retention horizon."""
    horizon = repository.horizon(connection, cutoff)
    if after is not None and after < horizon:
        raise gone()
    if since is None:
        since = repository.newest_position(connection)
    start = max(after or 0, horizon)
    events, last = visible_events(connection, reader, start, types, limit, keys, since)
    return FeedPage(events, last, since)


async def read_feed(
    runtime: Runtime,
    reader: Reader,
    after: int | None,
    types: Sequence[str],
    limit: int,
    wait: float,
    keys: EventKeys,
    since: int | None = None,
) -> FeedPage:
    """A page of the feed; with `wait`, an empty one is held until an event this reader may see
    arrives (woken by commits, db/notices.py) or `wait` seconds pass. `since`: where the reader's
    reading began, from its cursor (None: it begins now)."""
    cutoff = utcnow() - dt.timedelta(days=runtime.settings.event_retention_days)
    db = runtime.db
    if wait <= 0:
        return await db.read(_read_page, reader, after, types, limit, keys, cutoff, since)
    deadline = time.monotonic() + min(wait, MAX_WAIT_SECONDS)
    with runtime.notices.watch_events() as woken:
        while True:
            woken.clear()
            page = await db.read(_read_page, reader, after, types, limit, keys, cutoff, since)
            if page.events:
                return page
            after, since = page.next_position, page.since
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return page
            try:
                await asyncio.wait_for(woken.wait(), remaining)
            except TimeoutError:
                return page


async def event_keys(runtime: Runtime) -> EventKeys:
    """The instance's cursor and event-id keys, read once per process."""
    if runtime.event_secret is None:
        runtime.event_secret = await shared_secret(runtime.db, SECRET_NAME)
    return EventKeys(runtime.event_secret)
