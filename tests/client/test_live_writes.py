"""The client's writes against a live `registrar serve`: tasks, waiting, petitions, idempotent
retries over a connection cut after the server accepted. Sync and async alike."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from registrar_client import (
    AsyncTask,
    BadRequest,
    NotFound,
    Petition,
    Task,
    TaskFailed,
    Unprocessable,
)

from tests.support.client import (
    ALL_SCOPES,
    CuttingProxy,
    LiveServer,
    RequestLog,
    close,
    collect,
    location_of,
    make_client,
    resolve,
    student,
)

TASK_ID = re.compile(r"[0-9a-f]{24}")


@pytest.fixture
async def client(flavor: str, live: LiveServer, all_key: str) -> AsyncIterator[Any]:
    c = make_client(flavor, live.base_url, all_key)
    yield c
    await close(c)


def petition_fields(netid: str = "f004stu", **changes: Any) -> dict[str, Any]:
    fields = {
        "netid": netid,
        "petition_code": "Q41",
        "origin_code": "UREG",
        "school": "UG",
        "decision": f"IDP {secrets.token_hex(4)}",  # unique: tells this test's petitions apart
        "grade_term": "24F",
        "user_netid": "f0inst",
    }
    fields.update(changes)
    return fields


async def test_set_course_assessment_then_wait(flavor: str, live: LiveServer, all_key: str) -> None:
    log = RequestLog()
    c = make_client(flavor, live.base_url, all_key, log=log)
    eid = student("202001", "f003stu")
    try:
        when = dt.datetime(
            2020, 3, 5, 12, 53, 46, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5))
        )
        task = await resolve(c.enrollments.set_course_assessment(eid, submit_date=when))
        assert isinstance(task, (Task, AsyncTask))
        assert TASK_ID.fullmatch(task.id)
        assert task.status == "accepted"
        assert task.path is None and task.message is None
        done = await resolve(task.wait(timeout=30))
        assert done.status == "complete"
        assert done.id == task.id
        assert done.path == f"{live.base_url}/api/academic/enrollments/{eid}"
        assert done.message == "Enrollment updated successfully."
        assert done.payload.course_assessment.raw == {
            "submit_date": "2020-03-05T17:53:46Z",
            "opt_out_date": None,
        }
        assert done.requester.sub == "client-all"
        assert done.completed_date.endswith("Z")
        after = await resolve(c.enrollments.get(eid))
        assert after.course_assessment.submit_date == "2020-03-05T17:53:46Z"
        assert after.course_assessment.opt_out_date is None

        cleared = await resolve(c.enrollments.set_course_assessment(eid))
        assert (await resolve(cleared.wait(timeout=30))).status == "complete"
        assert (await resolve(c.enrollments.get(eid))).course_assessment is None
    finally:
        await close(c)
    polls = [u for u in log.urls if u.path == f"/api/tasks/{task.id}"]
    assert polls and all(u.params.get("wait") == "30" for u in polls[:1])
    writes = [u for u in log.urls if u.path.startswith("/api/academic/enrollments/")]
    assert len(writes) == 4  # two PATCHes, two GETs: nothing retried


async def test_task_failed_carries_the_servers_messages(client: Any) -> None:
    task = await resolve(
        client.petitions.create(**petition_fields(petition_code="Q99", grade_term="24Q"))
    )
    with pytest.raises(TaskFailed) as caught:
        await resolve(task.wait(timeout=30))
    failed = caught.value
    assert failed.task.status == "error"
    assert failed.task.id == task.id
    assert "Unknown petition_code: Q99." in failed.errors
    assert any(e.startswith("grade_term") for e in failed.errors)
    assert len(failed.errors) == 2
    assert failed.task.path.endswith("/api/academic/petitions")
    # Or as a value, without raising:
    same = await resolve(task.wait(timeout=30, raise_on_error=False))
    assert same.status == "error"
    assert "Q99" in same.message


async def test_petition_create_get_list_and_the_students_view(client: Any) -> None:
    fields = petition_fields("f004stu")
    task = await resolve(client.petitions.create(**fields))
    done = await resolve(task.wait(timeout=30))
    assert done.status == "complete"
    assert done.message == "Petition created successfully."
    petition_id = done.path.rsplit("/", 1)[1]
    assert TASK_ID.fullmatch(petition_id)

    petition = await resolve(client.petitions.get(petition_id))
    assert isinstance(petition, Petition)
    assert petition.netid == "f004stu"
    assert petition.petition_code == "Q41"
    assert petition.origin_name  # from the reference table
    assert petition.decision == fields["decision"]
    assert petition.grade_term == "24F"

    listed = await collect(client.petitions.list(netid="f004stu", decision=fields["decision"]))
    assert [p.id for p in listed] == [petition_id]
    mine = await collect(client.students.petitions("F004STU", decision=fields["decision"]))
    assert [p.id for p in mine] == [petition_id]

    record = await resolve(client.tasks.get(task.id))
    assert record.status == "complete"
    assert record.resource == "academic.petitions"
    assert record.action == "POST"
    assert record.payload["decision"] == fields["decision"]
    assert record.requester.sub == "client-all"
    assert set(record) >= {"request_date", "completed_date", "worker_data", "resource_id"}
    assert (await resolve(task.refresh())).raw == record.raw  # a new record, the same task
    # wait() on a finished record asks nothing more and hands it back.
    assert (await resolve(record.wait())).raw == record.raw


async def test_tasks_wait_by_id(client: Any) -> None:
    task = await resolve(client.petitions.create(**petition_fields()))
    done = await resolve(client.tasks.wait(task.id, timeout=30))
    assert done.status == "complete"


async def test_the_same_idempotency_key_is_the_same_task(client: Any) -> None:
    key = f"test-{secrets.token_hex(8)}"
    eid = student("201901", "f002stu")
    first = await resolve(
        client.enrollments.set_course_assessment(
            eid, opt_out_date="2020-01-01T00:00:00Z", idempotency_key=key
        )
    )
    again = await resolve(
        client.enrollments.set_course_assessment(
            eid, opt_out_date="2020-01-01T00:00:00Z", idempotency_key=key
        )
    )
    assert again.id == first.id
    with pytest.raises(Unprocessable) as caught:
        await resolve(
            client.enrollments.set_course_assessment(
                eid, opt_out_date="2021-01-01T00:00:00Z", idempotency_key=key
            )
        )
    assert caught.value.status == 422
    # Without a key, each call is a new request (a generated key each time).
    one = await resolve(client.enrollments.set_course_assessment(eid))
    two = await resolve(client.enrollments.set_course_assessment(eid))
    assert one.id != two.id
    for task in (first, one, two):
        await resolve(task.wait(timeout=30))


async def test_bad_writes(client: Any) -> None:
    eid = student()
    with pytest.raises(BadRequest) as caught:
        await resolve(client.enrollments.set_course_assessment(eid, submit_date="yesterday"))
    assert any("submit_date" in e for e in caught.value.errors)
    with pytest.raises(NotFound):
        await resolve(client.enrollments.set_course_assessment(student(netid="nobody")))
    with pytest.raises(ValueError, match="not both"):
        await resolve(
            client.enrollments.set_course_assessment(
                eid, submit_date="2020-03-05T17:53:46Z", opt_out_date="2020-03-05T17:53:46Z"
            )
        )
    with pytest.raises(ValueError, match="timezone"):
        await resolve(
            client.enrollments.set_course_assessment(eid, submit_date=dt.datetime(2020, 3, 5))
        )


async def test_a_task_is_visible_only_to_its_requester(
    client: Any, flavor: str, live: LiveServer
) -> None:
    task = await resolve(client.petitions.create(**petition_fields()))
    other = make_client(flavor, live.base_url, live.key("client-other", ALL_SCOPES))
    try:
        with pytest.raises(NotFound):
            await resolve(other.tasks.get(task.id))
    finally:
        await close(other)
    await resolve(task.wait(timeout=30))


async def test_petition_paging_sees_each_once_while_petitions_are_created(client: Any) -> None:
    netid = "f001stu"
    decision = f"paging {secrets.token_hex(4)}"
    for task in [
        await resolve(client.petitions.create(**petition_fields(netid, decision=decision)))
        for _ in range(7)
    ]:
        await resolve(task.wait(timeout=30))
    paginator = client.students.petitions(netid, decision=decision, pagesize=2)
    pages = paginator.pages()
    first = await _next(pages)
    # Created between pages: not in the found set the walk is on.
    for task in [
        await resolve(client.petitions.create(**petition_fields(netid, decision=decision)))
        for _ in range(3)
    ]:
        await resolve(task.wait(timeout=30))
    rest = [p for page in await collect(pages) for p in page]
    ids = [p.id for p in list(first) + rest]
    assert len(ids) == len(set(ids)) == 7
    assert paginator.total == 7
    assert len(await collect(client.students.petitions(netid, decision=decision))) == 10


async def _next(iterator: Any) -> Any:
    if hasattr(iterator, "__anext__"):
        return await iterator.__anext__()
    return next(iterator)


@pytest.fixture
def proxy(live: LiveServer) -> Iterator[CuttingProxy]:
    p = CuttingProxy(int(live.base_url.rsplit(":", 1)[1]))
    yield p
    p.close()


async def test_a_write_cut_after_the_server_accepted_is_retried_and_applied_once(
    flavor: str, live: LiveServer, all_key: str, proxy: CuttingProxy
) -> None:
    """The connection drops after the server queued the PATCH (its 202 never arrives): the
    client retries with the same Idempotency-Key and gets the very task the server queued."""
    log = RequestLog()
    c = make_client(flavor, proxy.base_url, all_key, log=log)
    eid = student("201809", "f000stu", "COSC.001.02")
    try:
        await resolve(c.enrollments.get(eid))  # log in and warm the connection first
        proxy.cuts = 1
        task = await resolve(
            c.enrollments.set_course_assessment(eid, submit_date="2019-01-02T03:04:05Z")
        )
        assert proxy.cuts == 0 and len(proxy.dropped) == 1
        assert location_of(proxy.dropped[0]) == f"/api/tasks/{task.id}"
        done = await resolve(task.wait(timeout=30))
        assert done.status == "complete"
        assert (await resolve(c.enrollments.get(eid))).course_assessment.submit_date == (
            "2019-01-02T03:04:05Z"
        )
    finally:
        await close(c)
    patches = [u for u in log.urls if u.path == f"/api/academic/enrollments/{eid}"]
    assert len(patches) == 4  # GET, PATCH (cut), PATCH (retried), GET


async def test_a_petition_cut_after_the_server_accepted_is_created_once(
    flavor: str, live: LiveServer, all_key: str, proxy: CuttingProxy
) -> None:
    c = make_client(flavor, proxy.base_url, all_key)
    fields = petition_fields("f002stu")
    try:
        proxy.cuts = 1
        task = await resolve(c.petitions.create(**fields))
        assert len(proxy.dropped) == 1
        assert location_of(proxy.dropped[0]) == f"/api/tasks/{task.id}"
        await resolve(task.wait(timeout=30))
        created = await collect(c.petitions.list(netid="f002stu", decision=fields["decision"]))
        assert len(created) == 1
    finally:
        await close(c)


async def test_concurrent_writes_from_one_async_client(live: LiveServer, all_key: str) -> None:
    c = make_client("async", live.base_url, all_key)
    try:
        tasks = await asyncio.gather(
            *[c.petitions.create(**petition_fields("f003stu")) for _ in range(8)]
        )
        done = await asyncio.gather(*[t.wait(timeout=30) for t in tasks])
        assert {d.status for d in done} == {"complete"}
        assert len({d.path for d in done}) == 8
    finally:
        await close(c)


async def test_a_503_with_retry_after_is_waited_out_and_the_write_applied_once(
    flavor: str, live: LiveServer, all_key: str, proxy: CuttingProxy
) -> None:
    """In front of the live server, the write is answered `503` with `Retry-After: 1` twice;
    the client waits the second each time, sends the same Idempotency-Key and bytes, and the
    server applies it once. A read is retried the same way."""
    log = RequestLog()
    c = make_client(flavor, proxy.base_url, all_key, log=log)
    fields = petition_fields("f005stu")
    try:
        await resolve(c.enrollments.get(student()))  # log in and warm the connection first
        proxy.unavailable = 2
        started = time.monotonic()
        task = await resolve(c.petitions.create(**fields))
        took = time.monotonic() - started
        assert len(proxy.refused) == 2
        done = await resolve(task.wait(timeout=30))
        assert done.status == "complete"
        created = await collect(c.petitions.list(netid="f005stu", decision=fields["decision"]))
        assert len(created) == 1

        proxy.unavailable_for = (b"GET /api/academic/enrollments/",)
        proxy.unavailable = 1
        assert (await resolve(c.enrollments.get(student()))).id == student()
        assert len(proxy.refused) == 3
    finally:
        await close(c)
    assert took >= 2.0  # Retry-After: 1, twice
    posts = [s for m, p, s in log.responses if m == "POST" and p == "/api/academic/petitions"]
    assert posts == [503, 503, 202]
    keys = [k for m, p, k in log.keys if (m, p) == ("POST", "/api/academic/petitions")]
    assert len(keys) == 3
    assert len(set(keys)) == 1 and None not in keys
    gets = [s for m, p, s in log.responses if p == f"/api/academic/enrollments/{student()}"]
    assert gets == [200, 503, 200]
