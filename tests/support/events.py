"""The event feed as a client reads it, a mirror that applies it, and changes recorded the way a
SIS load records them (straight to the database, with their events, in one transaction)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, delete, insert

from registrar.core.clock import utcnow
from registrar.core.settings import Settings
from registrar.enrollments.models import Enrollment, Section, Term
from registrar.events.record import Change, record
from registrar.people.models import Person
from tests.support.databases import write

EVENTS = "/api/events"


def read_page(
    api: TestClient, headers: dict[str, str], after: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str, Any]:
    """One page: (events, the next cursor, the response)."""
    query = {**params, **({"after": after} if after is not None else {})}
    response = api.get(EVENTS, headers=headers, params=query)
    assert response.status_code == 200, response.text
    cursor = response.headers["X-Next-Cursor"]
    assert f"after={cursor}" in response.headers["Link"].replace("%3D", "=")
    return response.json(), cursor, response


def read_all(
    api: TestClient, headers: dict[str, str], after: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str | None]:
    """Every event from `after` to the feed's current end, following the cursors."""
    events: list[dict[str, Any]] = []
    while True:
        page, cursor, _r = read_page(api, headers, after, **params)
        events += page
        after = cursor
        if not page:
            return events, after


class Mirror:
    """A client's copy of the enrollments it may see, kept by applying the feed."""

    def __init__(self) -> None:
        self.enrollments: dict[str, dict[str, Any]] = {}
        self.cursor: str | None = None
        self.seen: set[str] = set()

    def apply(self, event: dict[str, Any]) -> None:
        assert event["id"] not in self.seen, "an event was handed out twice"
        self.seen.add(event["id"])
        if not event["type"].startswith("enrollment."):
            return
        if event["type"] == "enrollment.deleted":
            self.enrollments.pop(event["subject"], None)
            return
        data = {k: v for k, v in event["data"].items() if k != "changed"}
        self.enrollments[event["subject"]] = data

    def catch_up(self, api: TestClient, headers: dict[str, str]) -> None:
        events, self.cursor = read_all(api, headers, self.cursor, pagesize=7)
        for event in events:
            self.apply(event)


def collection(api: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """GET /api/academic/enrollments, every page, by id."""
    found: dict[str, dict[str, Any]] = {}
    page = 1
    while True:
        response = api.get(
            "/api/academic/enrollments",
            headers=headers,
            params={"pagesize": 1000, "page": page},
        )
        assert response.status_code == 200, response.text
        for item in response.json():
            found[item["id"]] = item
        if 'rel="next"' not in response.headers.get("Link", ""):
            return found
        page += 1


def load_enrollments(
    settings: Settings, section: str, netids: list[str], *, confidential: bool = False
) -> list[str]:
    """A load's new enrollments (one new section), with their `enrollment.created` events."""
    term_id = f"T-{section}"
    ids = [f"{section}-{n}-student" for n in netids]

    def load(connection: Connection) -> None:
        connection.execute(
            insert(Term).values(
                id=term_id, lms_term_id="1", sis_ptrm_code="1", sis_term_code="202001"
            )
        )
        connection.execute(
            insert(Section).values(id=section, lms_section_id="1", sis_section_id="1")
        )
        connection.execute(
            insert(Person),
            [{"netid": n, "confidential": confidential, "updated_at": utcnow()} for n in netids],
        )
        connection.execute(
            insert(Enrollment),
            [
                {
                    "id": eid,
                    "netid": n,
                    "role": "student",
                    "school_id": "UG",
                    "section_id": section,
                    "term_id": term_id,
                    "is_active": True,
                    "is_in_session": True,
                    "final_grade": None,
                    "cache_date": utcnow(),
                }
                for eid, n in zip(ids, netids, strict=True)
            ],
        )
        record(
            connection,
            [
                Change("enrollment.created", eid, "sis", n)
                for eid, n in zip(ids, netids, strict=True)
            ],
        )

    write(settings, load)
    return ids


def load_update(settings: Settings, enrollment_id: str, netid: str, **values: Any) -> None:
    """A load's update of some columns, with its `enrollment.updated` event naming the keys."""
    keys = {"final_grade": "final_grade", "is_active": "is_active"}

    def load(connection: Connection) -> None:
        connection.execute(
            Enrollment.__table__.update().where(Enrollment.id == enrollment_id).values(**values)
        )
        changed = tuple(keys[k] for k in values)
        record(connection, [Change("enrollment.updated", enrollment_id, "sis", netid, changed)])

    write(settings, load)


def load_delete(settings: Settings, enrollment_id: str, netid: str) -> None:
    """A `--replace` load's removal, with its `enrollment.deleted` event."""

    def load(connection: Connection) -> None:
        connection.execute(delete(Enrollment).where(Enrollment.id == enrollment_id))
        record(connection, [Change("enrollment.deleted", enrollment_id, "sis", netid)])

    write(settings, load)


def queue_empty(settings: Settings) -> bool:
    """No task is waiting or running."""
    from sqlalchemy import func, select

    from registrar.tasks.models import Task, TaskStatus
    from tests.support.databases import read

    stmt = select(func.count()).where(Task.status == TaskStatus.ACCEPTED)
    return read(settings, lambda c: int(c.scalar(stmt) or 0)) == 0
