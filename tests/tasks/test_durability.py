"""The queue survives SIGKILL: real `registrar serve` / `registrar worker` processes.

Accepted tasks are in the database before the 202 leaves, and a handler's writes commit with the
task's completion, so killing the process at any instant loses nothing and applies nothing twice:
after a restart (lease expiry reclaims what was in flight) every accepted task completes, each with
exactly one audit row.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import backend, cli, make_settings
from tests.tasks.fixtures import WRITE, audit_count, body, seed_enrollments

BIN = Path(sys.executable).parent / "registrar"


def command(*args: str) -> list[str]:
    if BIN.exists():
        return [str(BIN), *args]
    return [sys.executable, "-m", "registrar", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, database_url: str, *args: str, **env: str) -> None:
        full_env = {
            **os.environ,
            "REGISTRAR_DATABASE_URL": database_url,
            "REGISTRAR_TASK_LEASE_SECONDS": "2",  # reclaim a killed worker's tasks quickly
            "REGISTRAR_WORKER_POLL_SECONDS": "0.2",
            "REGISTRAR_LOG_JSON": "false",
            "REGISTRAR_LOG_LEVEL": "WARNING",
            **env,
        }
        self.proc = subprocess.Popen(
            command(*args), env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, *, uvicorn: bool = True) -> int:
        """SIGTERM; the exit status, with uvicorn's re-raised SIGTERM after a clean exit as 0."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
        assert "Traceback" not in stderr, stderr
        # uvicorn >= 0.29 shuts down gracefully, then re-raises the signal it caught.
        return 0 if uvicorn and code == -signal.SIGTERM else code

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def serve(database_url: str, port: int, *extra: str, **env: str) -> Proc:
    p = Proc(database_url, "serve", "--port", str(port), *extra, **env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert p.proc.poll() is None, p.proc.stderr.read().decode() if p.proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return p
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    p.ensure_dead()
    raise AssertionError("server did not start")


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


def login(base: str, key: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/jwt", headers={"Authorization": key}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['jwt']}"}


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
    from sqlalchemy import func, select

    from registrar.tasks.models import Task
    from tests.tasks.fixtures import run_db

    ids = [loc.rsplit("/", 1)[1] for loc in locations]

    async def _count(runtime):  # type: ignore[no-untyped-def]
        async with runtime.db.reading() as session:
            stmt = select(func.count()).where(Task.id.in_(ids), Task.status == "accepted")
            return int(await session.scalar(stmt) or 0)

    return run_db(make_settings(database_url), _count)


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
