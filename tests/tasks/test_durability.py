"""The queue survives SIGKILL: real `registrar serve` / `registrar worker` processes.

Accepted tasks are in the database before the 202 leaves, and a handler's writes commit with the
task's completion, so killing the process at any instant loses nothing and applies nothing twice:
after a restart (lease expiry reclaims what was in flight) every accepted task completes, each with
exactly one audit row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from registrar.auth.scopes import ENROLLMENTS_WRITE as WRITE
from registrar.tasks.models import Task, TaskStatus
from tests.support.accounts import cli
from tests.support.databases import backend, make_settings, read
from tests.support.seeding import audit_count, seed_enrollments
from tests.support.servers import Proc, free_port, login, serve
from tests.support.tasks import patch_body as body


@pytest.fixture(scope="module")
def prepared(database_url: str) -> Iterator[tuple[str, list[str]]]:
    code, _out, err = cli(database_url, "migrate")
    assert code == 0, err
    code, out, err = cli(
        database_url,
        "clients",
        "create",
        "--sub",
        "svc-durable",
        "--name",
        "durable",
        "--email",
        "d@example.edu",
        "--scopes",
        WRITE,
    )
    assert code == 0, err
    ids = seed_enrollments(make_settings(database_url), 120)
    yield out.strip().splitlines()[-1], ids


def send_patches(base: str, headers: dict[str, str], ids: list[str]) -> list[str]:
    locations = []
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for eid in ids:
            r = client.patch(f"/api/academic/enrollments/{eid}", json=body("2020-03-05T17:53:46Z"))
            assert r.status_code == 202, r.text
            locations.append(r.headers["location"])
    return locations


def patches_then_kill(
    base: str, headers: dict[str, str], ids: list[str], server: Proc, kill_after: int
) -> list[str]:
    """PATCH concurrently; SIGKILL the server once `kill_after` answered; the 202s' Locations."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    def one(client: httpx.Client, eid: str) -> str | None:
        try:
            r = client.patch(f"/api/academic/enrollments/{eid}", json=body("2020-03-05T17:53:46Z"))
        except httpx.HTTPError:
            return None  # the server died before answering: not accepted, nothing to check
        return str(r.headers["location"]) if r.status_code == 202 else None

    locations = []
    with (
        httpx.Client(base_url=base, headers=headers, timeout=10) as client,
        ThreadPoolExecutor(16) as pool,
    ):
        futures = [pool.submit(one, client, eid) for eid in ids]
        for n, future in enumerate(as_completed(futures), 1):
            if n == kill_after:
                server.kill()
            if (loc := future.result()) is not None:
                locations.append(loc)
    return locations


def pending(database_url: str, locations: list[str]) -> int:
    ids = [loc.rsplit("/", 1)[1] for loc in locations]
    stmt = select(func.count()).where(Task.id.in_(ids), Task.status == TaskStatus.ACCEPTED)
    return read(make_settings(database_url), lambda connection: int(connection.scalar(stmt) or 0))


def wait_all(
    base: str, headers: dict[str, str], locations: list[str], timeout: float = 30
) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, object]] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        while len(done) < len(locations):
            for loc in locations:
                if loc not in done:
                    task = client.get(loc).json()
                    if task["status"] != "accepted":
                        done[loc] = task
            assert time.monotonic() < deadline, f"{len(locations) - len(done)} tasks still accepted"
            time.sleep(0.1)
    return [done[loc] for loc in locations]


def test_sigkill_loses_nothing_and_applies_nothing_twice(
    database_url: str, prepared: tuple[str, list[str]]
) -> None:
    key, ids = prepared
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(database_url, port)
    try:
        headers = login(base, key)
        # 16 clients at once, and SIGKILL while they are still sending: mid-request, mid-task.
        locations = patches_then_kill(base, headers, ids[:100], server, kill_after=50)
        left = pending(database_url, locations)
        print(f"at SIGKILL: {len(locations)} accepted, {left} not yet complete")
        assert len(locations) >= 50
        server = serve(database_url, port)
        tasks = wait_all(base, headers, locations)
        assert {t["status"] for t in tasks} == {"complete"}
        task_ids = [str(t["id"]) for t in tasks]
        settings = make_settings(database_url)
        assert audit_count(settings, task_ids=task_ids) == len(task_ids)
        accepted = {str(t["resource_id"]) for t in tasks}
        for eid in ids[:100]:
            # Not accepted as far as the client knows may still have been committed just before
            # the kill (the 202 was lost on the wire): then it ran, once. Idempotency-Key covers
            # a client that must know.
            count = audit_count(settings, enrollment_id=eid)
            assert count == 1 if eid in accepted else count <= 1
        assert server.terminate() == 0  # SIGTERM: a clean shutdown
    finally:
        server.ensure_dead()


def test_separate_worker_process_runs_tasks_and_stops_cleanly(
    database_url: str, prepared: tuple[str, list[str]]
) -> None:
    key, ids = prepared
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(database_url, port, "--no-worker")
    worker: Proc | None = None
    try:
        headers = login(base, key)
        locations = send_patches(base, headers, ids[100:110])
        # PostgreSQL: LISTEN/NOTIFY wakes the worker, so a slow poll interval must not matter.
        poll = "30" if backend() == "postgresql" else "0.2"
        worker = Proc(
            database_url, "worker", "--concurrency", "3", REGISTRAR_WORKER_POLL_SECONDS=poll
        )
        wait_all(base, headers, locations)
        started = time.monotonic()
        more = send_patches(base, headers, ids[110:120])
        assert {t["status"] for t in wait_all(base, headers, more, timeout=10)} == {"complete"}
        if backend() == "postgresql":
            assert time.monotonic() - started < 5, "NOTIFY did not wake the worker"
        assert worker.terminate(uvicorn=False) == 0
        assert server.terminate() == 0
    finally:
        server.ensure_dead()
        if worker is not None:
            worker.ensure_dead()
