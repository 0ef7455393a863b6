"""GET /api/events over HTTP: a mirror that applies the feed ends with what the collection answers
for the same token, with loads, PATCHes, petitions and deletions interleaved; visibility (sensitive
keys, confidential people, task.completed for its requester alone, revoked grants); cursors."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    ENROLLMENTS_WRITE,
    PEOPLE_PRIVATE,
    PETITIONS_READ,
    PETITIONS_WRITE,
)
from registrar.core.settings import Settings
from tests.support.accounts import Accounts, cli
from tests.support.databases import make_settings
from tests.support.events import (
    EVENTS,
    Mirror,
    collection,
    load_delete,
    load_enrollments,
    load_update,
    queue_empty,
    read_all,
    read_page,
)
from tests.support.seeding import seed_petitions
from tests.support.tasks import JSON, patch_body, wait_task

READ = [ENROLLMENTS_READ]
FULL = [ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE, PETITIONS_READ]
SENSITIVE = [ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE]
REFRESH = 0.5


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url, account_refresh_seconds=REFRESH)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def people(api: TestClient, settings: Settings) -> dict[str, list[str]]:
    """Two sections loaded with their events: one of ordinary students, one of confidential ones;
    and the petition tests' people (for POSTs)."""
    seed_petitions(settings)
    tag = secrets.token_hex(3)
    open_ids = load_enrollments(settings, f"OPEN.{tag}", [f"f{tag}o{i}" for i in range(6)])
    hidden = load_enrollments(
        settings, f"CONF.{tag}", [f"f{tag}c{i}" for i in range(2)], confidential=True
    )
    return {"open": open_ids, "hidden": hidden}


def netid_of(enrollment_id: str) -> str:
    return enrollment_id.rsplit("-", 2)[1]


def patch(api: TestClient, headers: dict[str, str], eid: str, submit: str | None) -> dict[str, Any]:
    r = api.patch(
        f"/api/academic/enrollments/{eid}", headers={**headers, **JSON}, json=patch_body(submit)
    )
    assert r.status_code == 202, r.text
    return wait_task(api, r.headers["location"], headers)


def test_a_mirror_ends_with_what_the_collection_answers(
    api: TestClient, settings: Settings, accounts: Accounts, people: dict[str, list[str]]
) -> None:
    tokens = {
        "full": accounts.headers(FULL, sub="mirror-full"),
        "read": accounts.headers(READ, sub="mirror-read"),
        "sensitive": accounts.headers(SENSITIVE, sub="mirror-sensitive"),
    }
    writer = accounts.headers([ENROLLMENTS_WRITE, PEOPLE_PRIVATE], sub="mirror-writer")
    petitioner = accounts.headers([PETITIONS_WRITE], sub="mirror-petitioner")
    mirrors = {name: Mirror() for name in tokens}

    def check() -> None:
        for name, headers in tokens.items():
            mirrors[name].catch_up(api, headers)
            assert mirrors[name].enrollments == collection(api, headers), name

    check()
    open_ids, hidden = people["open"], people["hidden"]
    patch(api, writer, open_ids[0], "2020-03-05T17:53:46Z")
    patch(api, writer, hidden[0], "2020-03-06T17:53:46Z")
    load_update(settings, open_ids[1], netid_of(open_ids[1]), final_grade="A-")
    check()
    load_delete(settings, open_ids[2], netid_of(open_ids[2]))
    r = api.post(
        "/api/academic/petitions",
        headers={**petitioner, **JSON},
        json={
            "petition": {
                "netid": "f006kdf",
                "petition_code": "Q41",
                "origin_code": "UREG",
                "school": "UG",
                "grade_term": "24F",
            }
        },
    )
    assert r.status_code == 202
    wait_task(api, r.headers["location"], petitioner)
    patch(api, writer, open_ids[0], None)
    load_update(settings, open_ids[3], netid_of(open_ids[3]), is_active=False)
    more = load_enrollments(settings, f"MORE.{secrets.token_hex(3)}", ["f00more1", "f00more2"])
    load_delete(settings, more[0], "f00more1")
    check()
    # The plain reader's copy has no sensitive key, and nothing of the confidential section.
    assert all("final_grade" not in e for e in mirrors["read"].enrollments.values())
    assert not set(hidden) & set(mirrors["read"].enrollments)
    assert set(hidden) <= set(mirrors["full"].enrollments)


def test_what_each_reader_is_shown(
    api: TestClient, accounts: Accounts, people: dict[str, list[str]]
) -> None:
    plain = accounts.headers(READ, sub="shown-plain")
    full = accounts.headers(FULL, sub="shown-full")
    writer = accounts.headers([ENROLLMENTS_WRITE, PEOPLE_PRIVATE], sub="shown-writer")
    _events, plain_at = read_all(api, plain)
    _events, full_at = read_all(api, full)
    _events, writer_at = read_all(api, writer)
    eid = people["open"][4]
    task = patch(api, writer, eid, "2021-01-02T03:04:05Z")

    # An update of course_assessment alone (a sensitive key) is not shown without read.sensitive.
    seen_plain, _c = read_all(api, plain, plain_at)
    assert [e for e in seen_plain if e["subject"] in (eid, task["id"])] == []
    seen_full, _c = read_all(api, full, full_at)
    (update,) = [e for e in seen_full if e["subject"] == eid]
    assert update["type"] == "enrollment.updated" and update["origin"] == "api"
    assert update["data"]["changed"] == ["course_assessment"]
    assert update["data"]["course_assessment"]["submit_date"] == "2021-01-02T03:04:05Z"
    assert update["specversion"] == "1.0" and update["source"] == "/api/academic/enrollments"
    assert not [e for e in seen_full if e["type"] == "task.completed"]  # not its task

    # task.completed: to its requester alone, with the task record.
    mine, _c = read_all(api, writer, writer_at)
    (done,) = [e for e in mine if e["type"] == "task.completed"]
    assert done["subject"] == task["id"] and done["data"] == task
    assert [e["type"] for e in mine] == ["task.completed"]  # it may not read enrollments

    # The same value again changes nothing: no event.
    patch(api, writer, eid, "2021-01-02T03:04:05Z")
    again, _c = read_all(api, full, _c)
    assert [e for e in again if e["subject"] == eid] == []


def test_types_scopes_and_bad_input(api: TestClient, accounts: Accounts, people: Any) -> None:
    plain = accounts.headers(READ, sub="types-plain")
    nothing = accounts.headers([PETITIONS_WRITE], sub="types-none")
    created, _c = read_all(api, plain, type="enrollment.created")
    assert created and {e["type"] for e in created} == {"enrollment.created"}
    several, _c = read_all(api, plain, type="enrollment.created,enrollment.deleted")
    assert {e["type"] for e in several} == {"enrollment.created", "enrollment.deleted"}
    r = api.get(EVENTS, headers=plain, params={"type": "petition.created"})
    assert r.status_code == 403 and PETITIONS_READ in r.text
    for params in (
        {"type": "enrollment.exploded"},
        {"pagesize": "0"},
        {"pagesize": "1001"},
        {"pagesize": "x"},
        {"wait": "-1"},
        {"wait": "nan"},
        {"after": "not-a-cursor"},
        {"after": "A" * 5000},
    ):
        r = api.get(EVENTS, headers=plain, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert api.get(EVENTS).status_code == 401
    # A token that may read no resource sees only its own tasks' events: none here.
    events, cursor = read_all(api, nothing)
    assert events == [] and cursor


def test_cursors_are_opaque_and_sealed(api: TestClient, accounts: Accounts, people: Any) -> None:
    plain = accounts.headers(READ, sub="cursor-plain")
    page, cursor, response = read_page(api, plain, pagesize=2)
    assert len(page) == 2
    assert response.headers["Link"].startswith("<http://testserver/api/events?")
    rest, _c, _r = read_page(api, plain, cursor, pagesize=2)
    assert rest and rest[0]["id"] != page[-1]["id"]
    # Not the position in any readable form, and each answer seals it afresh.
    _p, again, _r = read_page(api, plain, pagesize=2)
    assert again != cursor
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    assert api.get(EVENTS, headers=plain, params={"after": flipped}).status_code == 400
    # An empty page still gives a cursor to resume from.
    _all, end = read_all(api, plain)
    empty, after_end, _r = read_page(api, plain, end)
    assert empty == [] and after_end


def test_a_revoked_grant_stops_its_events(
    api: TestClient, accounts: Accounts, database_url: str, settings: Settings, people: Any
) -> None:
    headers = accounts.headers([ENROLLMENTS_READ, PETITIONS_READ], sub="feed-narrowed")
    _events, cursor = read_all(api, headers)
    assert (
        cli(database_url, "clients", "update", "feed-narrowed", "--scopes", PETITIONS_READ)[0] == 0
    )
    time.sleep(REFRESH * 3)
    load_enrollments(settings, f"LATE.{secrets.token_hex(3)}", ["f00late1"])
    events, _c = read_all(api, headers, cursor)
    assert [e for e in events if e["type"].startswith("enrollment.")] == []
    r = api.get(EVENTS, headers=headers, params={"type": "enrollment.created"})
    assert r.status_code == 403


def test_wait_holds_an_empty_page_until_an_event_arrives(
    api: TestClient, settings: Settings, accounts: Accounts, people: Any
) -> None:
    reader = accounts.headers(READ, sub="feed-waiter")
    _events, end = read_all(api, reader)
    started = time.monotonic()
    page, cursor, _r = read_page(api, reader, end, wait="0.5")
    assert page == [] and 0.45 < time.monotonic() - started < 5

    def later() -> None:
        time.sleep(0.5)
        load_enrollments(settings, f"WAKE.{secrets.token_hex(3)}", [f"f{secrets.token_hex(3)}"])

    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pool.submit(later)
        page, _c, _r = read_page(api, reader, cursor, wait="20")
        took = time.monotonic() - started
    assert [e["type"] for e in page] == ["enrollment.created"]
    assert took < 10, took


def test_concurrent_writers_never_make_a_reader_skip_an_event(
    api: TestClient, settings: Settings, accounts: Accounts, people: Any
) -> None:
    """Writers commit in parallel (PostgreSQL's worker runs four batches at once, and loads run
    beside them) while a reader follows the feed closely: what it saw, in order, is exactly what
    a reader that starts afterwards sees. A position handed out before a lower one committed
    would be skipped for ever (design-events.md: the commit-order lock)."""
    reader = accounts.headers(FULL, sub="feed-follower")
    writer = accounts.headers([ENROLLMENTS_WRITE, PEOPLE_PRIVATE], sub="feed-racer")
    _events, start = read_all(api, reader)
    targets = people["open"][:2] + people["hidden"]
    stop = threading.Event()
    followed: list[str] = []

    def follow() -> None:
        cursor = start
        while not stop.is_set():
            page, cursor, _r = read_page(api, reader, cursor, pagesize=3)
            followed.extend(e["id"] for e in page)
        followed.extend(e["id"] for e in read_all(api, reader, cursor)[0])

    def write_some(n: int) -> None:
        for i in range(12):
            eid = targets[(n + i) % len(targets)]
            day = f"2020-03-{1 + (n * 12 + i) % 28:02d}T00:00:00Z"
            r = api.patch(
                f"/api/academic/enrollments/{eid}",
                headers={**writer, **JSON},
                json=patch_body(day),
            )
            assert r.status_code == 202

    def load_some(n: int) -> None:
        for _i in range(6):
            load_enrollments(settings, f"RACE.{secrets.token_hex(4)}", [f"f{secrets.token_hex(4)}"])

    with ThreadPoolExecutor(8) as pool:
        follower = pool.submit(follow)
        jobs = [pool.submit(write_some, n) for n in range(4)] + [
            pool.submit(load_some, n) for n in range(2)
        ]
        for job in jobs:
            job.result()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # let the worker finish the queue
            if queue_empty(settings):
                break
            time.sleep(0.1)
        time.sleep(0.3)
        stop.set()
        follower.result()
    everything = [e["id"] for e in read_all(api, reader, start)[0]]
    assert len(everything) >= 12 * 4 // 2 + 12
    assert followed == everything
