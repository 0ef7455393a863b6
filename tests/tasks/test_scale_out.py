"""Issue #4 "Scale out": 2 APIs and 3 workers on one PostgreSQL, one worker SIGKILLed mid-run.

One run (the module fixture `run`) sends 2,000 PATCHes for 200 enrollments, spread over two
`registrar serve --no-worker` processes, while three `registrar worker --concurrency 4` processes
drain the queue; once a good part is done it SIGKILLs a worker that holds leases. The tests below
then each check one promise against the database, so one broken promise does not hide the others:

* every accepted task ends `complete` (the killed worker's leases expire and are reclaimed);
* no task ran twice: exactly one audit row per task, written by the worker that completed it;
* writes to one enrollment were serialized: each audit row's `before` is the previous row's `after`;
* each enrollment shows its LAST requested value. "Last" is well defined because the PATCHes of one
  enrollment are sent one after another (the next only once the previous 202 arrived), while
  different enrollments go in parallel.

PostgreSQL only (SKIP LOCKED, LISTEN/NOTIFY and many processes are the point), in a fresh database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, ENROLLMENTS_WRITE
from tests.support.accounts import cli
from tests.support.databases import POSTGRES_ADMIN_URL, make_settings, new_database_url
from tests.support.seeding import seed_enrollments
from tests.support.servers import command, free_port, login

pytestmark = pytest.mark.skipif(
    not POSTGRES_ADMIN_URL, reason="needs REGISTRAR_TEST_POSTGRES_URL (PostgreSQL only)"
)

ENROLLMENTS = 200
PATCHES_PER_ENROLLMENT = 10  # 2,000 tasks
SENDERS = 16  # enrollments in flight at once: modest, two cores serve everything here
WORKERS = 3
WORKER_CONCURRENCY = 4
KILL_AFTER_COMPLETE = 500  # SIGKILL once this many tasks are done (and the victim holds leases)
LEASE_SECONDS = 5  # short, so the victim's tasks come back fast; long enough for a busy box
DEADLINE_SECONDS = 90
BASE_DATE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
# The run's own tasks: the workers also queue their periodic jobs' tasks (tasks.prune).
PATCHES = "resource = 'academic.enrollments'"


def submit_date(enrollment_index: int, n: int) -> str:
    """A distinct value per request, so the final state names the request that won."""
    return (BASE_DATE + dt.timedelta(minutes=enrollment_index * 100 + n)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


class Proc:
    """A `registrar` subprocess whose output goes to a file (a pipe could fill and block it)."""

    def __init__(self, log_dir: Path, name: str, database_url: str, *args: str, **env: str) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        full_env = {
            **os.environ,
            "REGISTRAR_DATABASE_URL": database_url,
            "REGISTRAR_TASK_LEASE_SECONDS": str(LEASE_SECONDS),
            "REGISTRAR_WORKER_POLL_SECONDS": "1",  # NOTIFY wakes workers; polling is the fallback
            "REGISTRAR_LOG_JSON": "false",
            "REGISTRAR_LOG_LEVEL": "WARNING",
            # 2 APIs and 3 workers share one server's max_connections with other test runs.
            "REGISTRAR_DB_POOL_SIZE": "6",
            "REGISTRAR_DB_MAX_OVERFLOW": "4",
            **env,
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                command(*args), env=full_env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def wait_healthy(proc: Proc, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, f"{proc.name} exited:\n{proc.output()}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{proc.name} did not start:\n{proc.output()}")


@dataclass
class Run:
    database_url: str
    ids: list[str]
    # Per enrollment: its task ids and the submit_date each asked for, in the order the 202s came.
    sent: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    victim_id: str = ""  # the killed worker's id prefix, "host:pid:"
    # Tasks it held, not complete, just after it died (a COMMIT it had sent may still land).
    lost: list[str] = field(default_factory=list)
    complete_at_kill: int = 0
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)  # enrollment id -> course_assessment
    seconds: float = 0.0
    transport_retries: int = 0
    # Live until the module ends, for the targeted test at the bottom.
    bases: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    workers: list[Proc] = field(default_factory=list)


async def _pg(database_url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(database_url)


async def _send_all(
    run: Run, bases: list[str], headers: dict[str, str], stop: asyncio.Event
) -> None:
    """Each enrollment's PATCHes in sequence, alternating API processes; SENDERS at a time."""
    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    clients = [
        httpx.AsyncClient(base_url=b, headers=headers, timeout=30, limits=limits) for b in bases
    ]
    gate = asyncio.Semaphore(SENDERS)

    async def one_enrollment(i: int, eid: str) -> None:
        async with gate:
            sent: list[tuple[str, str]] = []
            for n in range(PATCHES_PER_ENROLLMENT):
                value = submit_date(i, n)
                body = {"course_assessment": {"submit_date": value, "opt_out_date": None}}
                client = clients[(i + n) % len(clients)]  # consecutive PATCHes: different APIs
                # A keep-alive connection the server closes just as we reuse it fails with no
                # answer; the Idempotency-Key makes the retry safe (same key: same task).
                key = f"scale-{i}-{n}"
                for attempt in range(3):
                    try:
                        r = await client.patch(
                            f"/api/academic/enrollments/{eid}",
                            json=body,
                            headers={"Idempotency-Key": key},
                        )
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                        run.transport_retries += 1
                assert r.status_code == 202, r.text
                sent.append((r.headers["location"].rsplit("/", 1)[1], value))
            run.sent[eid] = sent

    try:
        await asyncio.gather(*(one_enrollment(i, eid) for i, eid in enumerate(run.ids)))
    finally:
        for c in clients:
            await c.aclose()
        stop.set()


async def _kill_mid_run(run: Run, victim: Proc, sending_done: asyncio.Event) -> None:
    """SIGKILL the victim once enough tasks are done and it holds leases (tasks running)."""
    conn = await _pg(run.database_url)
    try:
        prefix = None
        while True:
            complete = await conn.fetchval("SELECT count(*) FROM tasks WHERE status = 'complete'")
            if complete >= KILL_AFTER_COMPLETE:
                # Freeze the victim, let a COMMIT already on the wire land, then look at its
                # leases: a stopped worker cannot finish them between the look and the kill.
                victim.proc.send_signal(signal.SIGSTOP)
                await asyncio.sleep(0.05)
                # The worker id is "host:pid:random": find the victim's leases by its pid.
                held = await conn.fetch(
                    "SELECT id, locked_by FROM tasks WHERE status = 'accepted'"
                    " AND locked_by LIKE $1",
                    f"%:{victim.proc.pid}:%",
                )
                if held:
                    prefix = str(held[0]["locked_by"])
                    break
                victim.proc.send_signal(signal.SIGCONT)
            everything = ENROLLMENTS * PATCHES_PER_ENROLLMENT
            assert not (sending_done.is_set() and complete >= everything), (
                "everything finished before the victim could be killed mid-run"
            )
            await asyncio.sleep(0.02)
        victim.kill()
        run.complete_at_kill = int(complete)
        run.victim_id = prefix
        # Authoritative after the kill: what it held and never committed is lost in flight.
        rows = await conn.fetch(
            "SELECT id FROM tasks WHERE status = 'accepted' AND locked_by = $1", prefix
        )
        run.lost = [r["id"] for r in rows]
    finally:
        await conn.close()


async def _wait_and_collect(run: Run) -> None:
    total = ENROLLMENTS * PATCHES_PER_ENROLLMENT
    conn = await _pg(run.database_url)
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            left = await conn.fetchval("SELECT count(*) FROM tasks WHERE status = 'accepted'")
            count = await conn.fetchval(f"SELECT count(*) FROM tasks WHERE {PATCHES}")
            if count >= total and left == 0:
                break
            assert time.monotonic() < deadline, f"{left} of {count} tasks still accepted"
            await asyncio.sleep(0.2)
        for r in await conn.fetch(
            "SELECT id, status, attempts, resource_id, worker_data::text AS wd FROM tasks"
            f" WHERE {PATCHES}"
        ):
            run.tasks[r["id"]] = {**dict(r), "worker_data": json.loads(r["wd"] or "{}")}
        for r in await conn.fetch(
            "SELECT pk, enrollment_id, task_id, worker_id, started_at, changed_at,"
            " before::text AS b, after::text AS a FROM enrollment_audit ORDER BY pk"
        ):
            row = dict(r)
            row["before"], row["after"] = json.loads(r["b"]), json.loads(r["a"])
            run.audit.append(row)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("scale")
    database_url, drop = new_database_url(tmp)
    procs: list[Proc] = []
    try:
        code, _out, err = cli(database_url, "migrate")
        assert code == 0, err
        scopes = " ".join([ENROLLMENTS_WRITE, ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE])
        code, out, err = cli(
            database_url,
            "clients",
            "create",
            "--sub",
            "svc-scale",
            "--name",
            "scale",
            "--email",
            "scale@example.edu",
            "--scopes",
            scopes,
        )
        assert code == 0, err
        key = out.strip().splitlines()[-1]
        run = Run(database_url, seed_enrollments(make_settings(database_url), ENROLLMENTS))

        ports = [free_port(), free_port()]
        apis = [
            Proc(tmp, f"api{n}", database_url, "serve", "--no-worker", "--port", str(port))
            for n, port in enumerate(ports)
        ]
        procs += apis
        for api, port in zip(apis, ports, strict=True):
            wait_healthy(api, port)
        workers = [
            Proc(
                tmp, f"worker{n}", database_url, "worker", "--concurrency", str(WORKER_CONCURRENCY)
            )
            for n in range(WORKERS)
        ]
        procs += workers
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        headers = login(bases[0], key)  # a token from one API is good at the other
        run.bases, run.headers, run.workers = bases, headers, workers[1:]

        async def main() -> None:
            sending_done = asyncio.Event()
            await asyncio.gather(
                _send_all(run, bases, headers, sending_done),
                _kill_mid_run(run, workers[0], sending_done),
            )
            await _wait_and_collect(run)

        started = time.monotonic()
        asyncio.run(main())
        run.seconds = time.monotonic() - started
        with httpx.Client(base_url=bases[1], headers=headers, timeout=30) as client:
            for eid in run.ids:
                r = client.get(f"/api/academic/enrollments/{eid}")
                assert r.status_code == 200, r.text
                run.final[eid] = r.json()["course_assessment"]
        for w in workers[1:]:
            assert w.proc.poll() is None, f"{w.name} died:\n{w.output()}"
        print(
            f"\n{len(run.tasks)} tasks in {run.seconds:.1f}s; killed {run.victim_id} after "
            f"{run.complete_at_kill} complete, holding {len(run.lost)} unfinished tasks; "
            f"{run.transport_retries} PATCHes retried after a transport error"
        )
        yield run
    finally:
        for p in procs:
            p.kill()
        drop()


def test_every_task_ends_complete(run: Run) -> None:
    sent = [t for per in run.sent.values() for t, _v in per]
    assert len(sent) == ENROLLMENTS * PATCHES_PER_ENROLLMENT
    statuses = defaultdict(int)
    for task_id in sent:
        statuses[run.tasks[task_id]["status"]] += 1
    assert dict(statuses) == {"complete": len(sent)}


def test_the_kill_happened_mid_run_and_its_tasks_were_reclaimed(run: Run) -> None:
    assert run.victim_id, "no worker was killed"
    reclaimed = []
    for task_id in run.lost:
        task = run.tasks[task_id]
        assert task["status"] == "complete"
        if task["worker_data"]["worker"] != run.victim_id:
            # Another worker finished it after the lease expired, on a later attempt.
            assert task["attempts"] >= 2, task
            reclaimed.append(task_id)
        # Else the victim's COMMIT was already on the wire when it died: the server applied it.
    assert reclaimed, "the killed worker held no task that had to be reclaimed: not mid-run"


def test_each_task_ran_once_by_the_worker_that_completed_it(run: Run) -> None:
    """No two workers ran the same task: one audit row per task, by the lease holder."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in run.audit:
        by_task[row["task_id"]].append(row)
    twice = {t: rows for t, rows in by_task.items() if len(rows) > 1}
    assert not twice, f"tasks with several audit rows: {twice}"
    assert set(by_task) == set(run.tasks), "a task without its audit row, or an unknown one"
    for task_id, (row,) in by_task.items():
        task = run.tasks[task_id]
        assert row["enrollment_id"] == task["resource_id"]
        # The change committed with the completion, under that worker's lease.
        assert row["worker_id"] == task["worker_data"]["worker"], (task_id, row, task)
        assert row["started_at"] <= row["changed_at"]


def test_writes_to_one_enrollment_were_serialized(run: Run) -> None:
    """Audit rows of one enrollment chain: each `before` is the previous row's `after`."""
    by_enrollment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in run.audit:  # pk order: the row lock orders one enrollment's inserts
        by_enrollment[row["enrollment_id"]].append(row)
    broken = []
    for eid, rows in by_enrollment.items():
        previous = {"course_assessment": None}  # seeded without an assessment
        for row in rows:
            if row["before"] != previous:
                broken.append((eid, row["task_id"], row["before"], previous))
            previous = row["after"]
    assert not broken, f"{len(broken)} lost updates, e.g. {broken[:3]}"


def test_each_enrollment_shows_its_last_requested_value(run: Run) -> None:
    wrong = []
    reordered = 0
    reordered_by_reclaim = 0
    lost = set(run.lost)
    applied_order = defaultdict(list)
    for row in run.audit:
        applied_order[row["enrollment_id"]].append(row["task_id"])
    for eid, sent in run.sent.items():
        last_task, last_value = sent[-1]
        if applied_order[eid] != [t for t, _v in sent]:
            reordered += 1
            reordered_by_reclaim += any(t in lost for t, _v in sent)
        got = run.final[eid]
        if got != {"submit_date": last_value, "opt_out_date": None}:
            winner = next(
                (n for n, (_t, v) in enumerate(sent) if got and v == got["submit_date"]), None
            )
            wrong.append((eid, f"shows request #{winner}, last was #{len(sent) - 1}", last_task))
    print(
        f"\n{reordered} enrollments applied tasks out of request order "
        f"({reordered_by_reclaim} involving a reclaimed task); {len(wrong)} show a stale value"
    )
    assert not wrong, (
        f"{len(wrong)} of {len(run.sent)} enrollments do not show their last requested value "
        f"({reordered} applied their tasks out of request order, {reordered_by_reclaim} of them "
        f"involving a task the killed worker lost), e.g. {wrong[:3]}"
    )


def test_a_reclaimed_older_task_does_not_overwrite_a_newer_one(run: Run) -> None:
    """The case above made deterministic: a worker claims PATCH A of an enrollment and dies; PATCH B
    of the same enrollment is sent after A's 202 and completes; A's lease expires, another worker
    reclaims A. The enrollment must still show B, the last requested value.

    The dead worker is simulated with the claim's own UPDATE (locked_by, locked_until, attempts);
    the live workers are paused (SIGSTOP) only between A's 202 and that UPDATE, so they cannot take
    A first.
    """
    eid = run.ids[0]
    a, b = "2021-01-01T00:00:00Z", "2021-02-02T00:00:00Z"

    async def scenario() -> None:
        conn = await _pg(run.database_url)
        try:
            async with httpx.AsyncClient(headers=run.headers, timeout=30) as client:
                for w in run.workers:
                    w.proc.send_signal(signal.SIGSTOP)
                try:
                    r = await client.patch(
                        f"{run.bases[0]}/api/academic/enrollments/{eid}",
                        json={"course_assessment": {"submit_date": a, "opt_out_date": None}},
                    )
                    assert r.status_code == 202, r.text
                    task_a = r.headers["location"].rsplit("/", 1)[1]
                    claimed = await conn.execute(
                        "UPDATE tasks SET locked_by = 'dead:1:worker', attempts = attempts + 1,"
                        " locked_until = now() + make_interval(secs => $2)"
                        " WHERE id = $1 AND locked_by IS NULL",
                        task_a,
                        LEASE_SECONDS,
                    )
                    assert claimed == "UPDATE 1"
                finally:
                    for w in run.workers:
                        w.proc.send_signal(signal.SIGCONT)
                r = await client.patch(
                    f"{run.bases[1]}/api/academic/enrollments/{eid}",
                    json={"course_assessment": {"submit_date": b, "opt_out_date": None}},
                )
                assert r.status_code == 202, r.text
                deadline = time.monotonic() + 4 * LEASE_SECONDS
                while await conn.fetchval("SELECT count(*) FROM tasks WHERE status = 'accepted'"):
                    assert time.monotonic() < deadline, "tasks still accepted"
                    await asyncio.sleep(0.2)
                r = await client.get(f"{run.bases[0]}/api/academic/enrollments/{eid}")
                assert r.status_code == 200, r.text
                assert r.json()["course_assessment"] == {"submit_date": b, "opt_out_date": None}, (
                    f"the older PATCH (task {task_a}), reclaimed after its worker died, was "
                    "applied after the newer one and overwrote it"
                )
        finally:
            await conn.close()

    asyncio.run(scenario())
