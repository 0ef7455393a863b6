"""Waiting on a task through the server's long-poll, against live servers, sync and async:
`task.wait()` is one request the server holds and answers when a worker (started later, in
another process) finishes the task; `prefer_wait=` on a write is answered `200` with the
finished task when it finishes in time (and `wait()` then asks nothing), else the usual `202`."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.client import (
    ALL_SCOPES,
    LiveServer,
    RequestLog,
    close,
    extract,
    live_server,
    make_client,
    resolve,
    student,
    worker_process,
)

TASKS = "/api/tasks/"


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No worker in the server: tasks stay `accepted` until a test starts `registrar worker`."""
    with live_server(tmp_path_factory.mktemp("client-idle"), worker=False) as server:
        server.load(extract())
        yield server


def petition(netid: str = "f005stu") -> dict[str, Any]:
    return {
        "netid": netid,
        "petition_code": "Q41",
        "origin_code": "UREG",
        "school": "UG",
        "decision": f"IDP {secrets.token_hex(4)}",
        "grade_term": "24F",
    }


async def test_wait_is_one_held_request_answered_when_the_task_ends(
    flavor: str, idle: LiveServer
) -> None:
    """The task is queued while no worker runs; `registrar worker` starts 2 s into the wait.
    The client sent one request (`?wait=40`), which the server held and answered `complete`
    soon after the worker's commit: no polling loop (one that slept from 50 ms, doubling,
    would have asked 5 or more times in those seconds)."""
    log = RequestLog()
    c = make_client(flavor, idle.base_url, idle.key("wait-all", ALL_SCOPES), log=log)
    try:
        task = await resolve(c.petitions.create(**petition()))
        assert task.status == "accepted"
        started = time.monotonic()
        if flavor == "sync":  # it blocks: in a thread, while this one starts the worker
            waiting = asyncio.ensure_future(asyncio.to_thread(task.wait, timeout=40))
        else:
            waiting = asyncio.ensure_future(task.wait(timeout=40))
        await asyncio.sleep(2.0)
        assert not waiting.done()
        with worker_process(idle):
            worker_started = time.monotonic()
            done = await asyncio.wait_for(waiting, 40)
            answered = time.monotonic()
    finally:
        await close(c)
    assert done.status == "complete"
    assert done.id == task.id
    polls = [u for u in log.urls if u.path == TASKS + task.id]
    assert [u.params.get("wait") for u in polls] == ["40"]
    assert answered - started >= 2.0
    # The worker process starts (imports, migrations check) and runs the task; the held answer
    # follows its commit, long before the 40 s hold would end.
    assert answered - worker_started < 15, answered - worker_started


async def test_prefer_wait_answers_200_with_the_finished_task(
    flavor: str, live: LiveServer, all_key: str
) -> None:
    log = RequestLog()
    c = make_client(flavor, live.base_url, all_key, log=log)
    eid = student("202003", "f004stu", "AAAS.010.01")
    try:
        task = await resolve(
            c.enrollments.set_course_assessment(
                eid, submit_date="2020-06-01T08:00:00Z", prefer_wait=10
            )
        )
        assert task.status == "complete"  # the write's answer: no wait needed
        assert task.message == "Enrollment updated successfully."
        done = await resolve(task.wait(timeout=5))
        created = await resolve(c.petitions.create(**petition(), prefer_wait=10))
    finally:
        await close(c)
    assert done.raw == task.raw
    assert created.status == "complete" and created.path.startswith(live.base_url)
    assert log.responses.count(("PATCH", f"/api/academic/enrollments/{eid}", 200)) == 1
    assert log.responses.count(("POST", "/api/academic/petitions", 200)) == 1
    assert not [r for r in log.responses if r[1].startswith(TASKS)]  # wait() asked nothing
    writes = [u for u in log.urls if u.path.startswith("/api/academic/")]
    assert len(writes) == 2


async def test_prefer_wait_not_met_is_the_usual_202(flavor: str, idle: LiveServer) -> None:
    """No worker: the server holds the write 1 s, then answers 202; the task is `accepted` and
    `wait()` long-polls as usual (here until its own timeout)."""
    log = RequestLog()
    c = make_client(flavor, idle.base_url, idle.key("wait-all", ALL_SCOPES), log=log)
    try:
        started = time.monotonic()
        task = await resolve(c.petitions.create(**petition(), prefer_wait=1))
        held = time.monotonic() - started
        assert task.status == "accepted"
        record = await resolve(c.tasks.get(task.id))
    finally:
        await close(c)
    assert held >= 0.9
    assert log.responses.count(("POST", "/api/academic/petitions", 202)) == 1
    assert record.status == "accepted"
