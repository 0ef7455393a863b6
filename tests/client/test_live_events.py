"""The events feed through the client against a live `registrar serve`: to the feed's end by type
and scope, following it with the server's long-poll, resuming from a stored cursor after a
restart, `task.completed` for its requester alone, and `Gone` for an expired cursor. Sync and
async alike.

The changes a follower waits for are made by another client in a thread, while the follower's
one request is held open by the server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from registrar_client import Event, Gone, Registrar, RegistrarError

from registrar.core.clock import utcnow
from registrar.events.record import Change, record
from tests.support.client import (
    ALL_SCOPES,
    READ,
    LiveServer,
    RequestLog,
    close,
    collect,
    extract,
    live_server,
    make_client,
    next_item,
    resolve,
    student,
)
from tests.support.databases import make_settings, new_database_url, write
from tests.support.events import load_enrollments

EVENTS = "/api/events"


@contextlib.contextmanager
def later(delay: float, change: Callable[[], None]) -> Iterator[None]:
    """Run `change` in a thread after `delay` seconds; its exception is raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        time.sleep(delay)
        try:
            change()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(60)
    if errors:
        raise errors[0]


def set_submit_date(server: LiveServer, key: str, eid: str, when: str) -> None:
    """A change made by another (sync) client: the PATCH, applied by the server's worker."""
    with Registrar(server.base_url, key) as other:
        task = other.enrollments.set_course_assessment(eid, submit_date=when)
        assert task.wait(timeout=30).status == "complete"


async def to_the_end(stream: Any) -> list[Any]:
    return await collect(stream)


async def test_the_feed_to_its_end_by_type_page_and_scope(flavor: str, feed: LiveServer) -> None:
    """A load (straight to the database, with its events, as a SIS load records them) adds 24
    enrollments: the client walks their `enrollment.created` events from a stored cursor page by
    page (pagesize and types passed through) to the feed's end, and stops there. A token without
    the private scope does not see the two confidential people's."""
    log = RequestLog()
    c = make_client(flavor, feed.base_url, feed.key("feed-all", ALL_SCOPES), log=log)
    reader = make_client(flavor, feed.base_url, feed.key("feed-reader", (READ,)))
    settings = make_settings(feed.env["REGISTRAR_DATABASE_URL"])
    netids = [f"e{flavor[0]}{i:03d}" for i in range(24)]
    try:
        end = c.events.list(types="enrollment.created")
        await to_the_end(end)
        readers_end = reader.events.list(types="enrollment.created")
        await to_the_end(readers_end)
        ids = await asyncio.to_thread(load_enrollments, settings, f"EVA.{flavor}", netids[:22])
        ids += await asyncio.to_thread(
            load_enrollments, settings, f"EVB.{flavor}", netids[22:], confidential=True
        )
        before = len(log.urls)
        stream = c.events.list(after=end.cursor, types=["enrollment.created"], pagesize=10)
        created = await to_the_end(stream)
        narrow = await to_the_end(
            reader.events.list(after=readers_end.cursor, types="enrollment.created")
        )
    finally:
        await close(c)
        await close(reader)
    assert [e.subject for e in created] == ids  # commit order
    assert all(isinstance(e, Event) and e.type == "enrollment.created" for e in created)
    assert len({e.id for e in created}) == 24
    first = created[0]
    assert first.specversion == "1.0"
    assert first.origin == "sis"
    assert first.data.id == first.subject
    assert first.data.netid == netids[0]
    assert first.data.section.id == f"EVA.{flavor}"
    assert stream.cursor and stream.cursor != end.cursor
    polls = [u for u in log.urls[before:] if u.path == EVENTS]
    assert len(polls) == 3 + 1  # pages of 10, 10 and 4, then the empty end
    assert all(u.params["pagesize"] == "10" and "wait" not in u.params for u in polls)
    assert all(u.params["type"] == "enrollment.created" for u in polls)
    assert polls[0].params["after"] == end.cursor
    assert len({u.params["after"] for u in polls}) == 4

    assert [e.subject for e in narrow] == ids[:22]  # nothing about the confidential two


async def test_following_waits_on_the_servers_long_poll(flavor: str, feed: LiveServer) -> None:
    """From the feed's end, `follow=True` sends one request that the server holds until the
    change (made 1 s later by another client) is recorded, and hands out its event."""
    key = feed.key("feed-all", ALL_SCOPES)
    log = RequestLog()
    c = make_client(flavor, feed.base_url, key, log=log)
    reader = make_client(flavor, feed.base_url, feed.key("feed-reader", (READ,)))
    eid = student("202001", "f001stu", "COSC.001.02")
    when = f"2020-03-0{1 if flavor == 'sync' else 2}T10:00:00Z"
    try:
        end = c.events.list(types="enrollment.updated")
        await to_the_end(end)
        readers_end = reader.events.list(types="enrollment.updated")
        await to_the_end(readers_end)
        stream = c.events.list(after=end.cursor, types=["enrollment.updated"], follow=True, wait=20)
        before = len(log.urls)
        started = time.monotonic()
        with later(1.0, lambda: set_submit_date(feed, key, eid, when)):
            event = await next_item(stream)
            elapsed = time.monotonic() - started
        # The reader lacks read.sensitive: an update of course_assessment alone is not shown.
        hidden = await to_the_end(reader.events.list(after=readers_end.cursor))
        hidden_types = {e.type for e in hidden}
    finally:
        await close(c)
        await close(reader)
    assert event.type == "enrollment.updated"
    assert event.subject == eid
    assert event.data.changed == ["course_assessment"]
    assert event.data.course_assessment.submit_date == when
    assert 0.9 <= elapsed < 15, elapsed
    polls = [u for u in log.urls[before:] if u.path == EVENTS]
    assert len(polls) == 1, polls  # held by the server, not polled
    assert polls[0].params["wait"] == "20"
    assert polls[0].params["after"] == end.cursor
    assert "enrollment.updated" not in hidden_types


async def test_following_asks_again_after_each_empty_hold(flavor: str, feed: LiveServer) -> None:
    """Following goes on across empty answers: each request is held its `wait` (1 s here) and
    answered empty, the next asked at once from the cursor that answer gave, until the change
    made 2.5 s in arrives. Not a busy loop, and no event lost between two holds."""
    key = feed.key("feed-all", ALL_SCOPES)
    log = RequestLog()
    c = make_client(flavor, feed.base_url, key, log=log)
    eid = student("202003", "f002stu", "MATH.003.01")
    when = f"2020-04-0{1 if flavor == 'sync' else 2}T10:00:00Z"
    try:
        end = c.events.list(types="enrollment.updated")
        await to_the_end(end)
        stream = c.events.list(after=end.cursor, types="enrollment.updated", follow=True, wait=1)
        before = len(log.urls)
        with later(2.5, lambda: set_submit_date(feed, key, eid, when)):
            event = await next_item(stream)
    finally:
        await close(c)
    assert event.subject == eid
    assert event.data.course_assessment.submit_date == when
    polls = [u for u in log.urls[before:] if u.path == EVENTS]
    assert 3 <= len(polls) <= 10, polls  # about one a second, not one every few milliseconds
    assert all(u.params["wait"] == "1" for u in polls)
    assert polls[0].params["after"] == end.cursor
    assert all(u.params.get("after") for u in polls)


async def test_task_completed_is_shown_to_its_requester_alone(
    flavor: str, feed: LiveServer
) -> None:
    mine = make_client(flavor, feed.base_url, feed.key("feed-all", ALL_SCOPES))
    other = make_client(flavor, feed.base_url, feed.key("feed-other", ALL_SCOPES))
    try:
        my_end = mine.events.list(types="task.completed")
        await to_the_end(my_end)
        their_end = other.events.list(types="task.completed")
        await to_the_end(their_end)
        task = await resolve(
            mine.petitions.create(
                netid="f002stu",
                petition_code="Q41",
                origin_code="UREG",
                school="UG",
                grade_term="24F",
            )
        )
        done = await resolve(task.wait(timeout=30))
        follow = mine.events.list(after=my_end.cursor, types="task.completed", follow=True, wait=5)
        event = await next_item(follow)
        theirs = await to_the_end(other.events.list(after=their_end.cursor, types="task.completed"))
    finally:
        await close(mine)
        await close(other)
    assert event.subject == task.id
    assert event.data.status == "complete"
    assert event.data.path == done.path
    assert theirs == []


async def test_resuming_from_a_stored_cursor_after_a_restart(flavor: str, tmp_path: Path) -> None:
    """A consumer handles one event, stores the stream's cursor and stops; the server restarts;
    a new client resumes from the stored cursor and gets exactly the events after it (the rest,
    and one recorded after the restart): none repeated, none skipped."""
    # On PostgreSQL these run asyncio.run(): not inside this test's event loop.
    database_url, drop = await asyncio.to_thread(new_database_url, tmp_path)
    ids = [student("201901", f"f00{i}stu", "MATH.003.01") for i in range(4)]
    try:
        with live_server(tmp_path, database_url=database_url) as first:
            first.load(extract())
            key = first.key("resume", ALL_SCOPES)
            c = make_client(flavor, first.base_url, key)
            try:
                start = c.events.list(types="enrollment.updated", pagesize=1)
                assert await to_the_end(start) == []
                for eid in ids[:3]:
                    task = await resolve(
                        c.enrollments.set_course_assessment(
                            eid, opt_out_date="2019-02-01T00:00:00Z"
                        )
                    )
                    await resolve(task.wait(timeout=30))
                stream = c.events.list(after=start.cursor, types="enrollment.updated", pagesize=1)
                handled = await next_item(stream)
                stored = stream.cursor
            finally:
                await close(c)
        with live_server(tmp_path, database_url=database_url) as second:
            c = make_client(flavor, second.base_url, key)
            try:
                task = await resolve(
                    c.enrollments.set_course_assessment(ids[3], opt_out_date="2019-02-01T00:00:00Z")
                )
                await resolve(task.wait(timeout=30))
                resumed = c.events.list(after=stored, types="enrollment.updated")
                rest = await to_the_end(resumed)
                after_end = c.events.list(after=resumed.cursor, types="enrollment.updated")
                assert await to_the_end(after_end) == []
            finally:
                await close(c)
    finally:
        await asyncio.to_thread(drop)
    assert stored and stored != start.cursor
    assert [handled.subject] + [e.subject for e in rest] == ids
    assert len({handled.id, *(e.id for e in rest)}) == 4


async def test_an_expired_cursor_raises_gone(flavor: str, feed: LiveServer) -> None:
    """Events older than REGISTRAR_EVENT_RETENTION_DAYS (recorded here with an old time, as a
    load long ago would have) put a stored cursor before the retention horizon: the server
    answers 410, and the client raises `Gone` with the problem's words, following or not.

    Last in this module: past the horizon, the feed's start is after every event before it."""
    c = make_client(flavor, feed.base_url, feed.key("feed-all", ALL_SCOPES))
    settings = make_settings(feed.env["REGISTRAR_DATABASE_URL"])
    old = utcnow() - dt.timedelta(days=settings.event_retention_days + 1)
    try:
        end = c.events.list()
        await to_the_end(end)
        for n in (1, 2):
            change = Change("enrollment.deleted", f"expired-{flavor}-{n}", "sis")
            await asyncio.to_thread(write, settings, record, [change], old)
        with pytest.raises(Gone) as caught:
            await to_the_end(c.events.list(after=end.cursor))
        with pytest.raises(Gone):
            await next_item(c.events.list(after=end.cursor, follow=True, wait=2))
        fresh = await to_the_end(c.events.list())  # from the oldest kept: after the horizon
    finally:
        await close(c)
    gone = caught.value
    assert isinstance(gone, RegistrarError)
    assert gone.status == 410
    assert "older than the oldest event kept" in gone.detail
    assert "older than the oldest event kept" in str(gone)
    assert gone.problem["type"].endswith("cursor-expired")
    assert all(not e.subject.startswith("expired-") for e in fresh)
