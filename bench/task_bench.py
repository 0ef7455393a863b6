"""Task queue benchmark: a real `registrar serve` (SQLite, in-process worker).

Measures
  * accepted-to-complete latency at light load (one PATCH every --gap seconds), from the task's own
    request_date and completed_date (the server's clock, so client polling does not distort it);
  * sustained throughput: wrk sends PATCHes on --clients connections for --seconds, as fast as the
    server takes them; PATCH requests/s, and tasks/s from the first 202 until the queue is empty.
    (Without wrk: --total PATCHes from as many httpx clients, which saturate before the server.)

    .venv/bin/python bench/task_bench.py [--seconds 10] [--clients 32] [--light 200]

With --postgres [ADMIN_URL] (default postgresql://postgres@127.0.0.1:5432/postgres) it measures
instead how fast `registrar worker` processes drain a PostgreSQL queue (issue 15): per round a
fresh database (created on that server, dropped after), --tasks enrollments and one PATCH of
course_assessment queued for each over HTTP through `registrar serve --no-worker`, the API
stopped; then W `registrar worker` processes start and the clock runs until no task is
`accepted`. Tasks/s from the workers' start (their "started" log line; from their launch too),
worker CPU per task (/proc of the worker processes over the drain) and PostgreSQL CPU per task
(/proc of the database's own client backends, found in pg_stat_activity, over the drain; the
autovacuum workers that run on it meanwhile apart, read as they go) and, when the server preloads
pg_stat_statements (shared_preload_libraries), the database's statements' execution and planning
time over the drain (--statements: the costliest ones, per task); rounds for 1 and 2 workers,
--rounds times each, medians printed. --pin puts worker i on CPU i (taskset).

    .venv/bin/python bench/task_bench.py --postgres [--tasks 5000] [--rounds 3] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LUA_PATCH,
    ROOT,
    backends,
    command,
    cpu_seconds,
    enqueue,
    fresh_database,
    pct,
    registrar,
    seed_enrollments,
    serve,
    service_account,
    stop,
    token,
    wrk,
)

WRITE = "api:academic:enrollments:write"


def parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def body(i: int) -> dict[str, object]:
    second = i % 60
    return {
        "course_assessment": {
            "submit_date": f"2020-03-05T17:53:{second:02d}Z",
            "opt_out_date": None,
        }
    }


async def wait_done(client: httpx.AsyncClient, locations: list[str]) -> list[dict[str, object]]:
    done: dict[str, dict[str, object]] = {}
    while len(done) < len(locations):
        for loc in locations:
            if loc not in done:
                task = (await client.get(loc)).json()
                if task["status"] != "accepted":
                    done[loc] = task
        await asyncio.sleep(0.05)
    return [done[loc] for loc in locations]


def queued(db_path: Path, status: str = "accepted") -> int:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return int(
            con.execute("SELECT count(*) FROM tasks WHERE status = ?", (status,)).fetchone()[0]
        )
    finally:
        con.close()


def sustained_wrk(
    args: argparse.Namespace, base: str, token: str, ids: list[str], db: Path, pid: int
) -> None:
    """wrk PATCHes for --seconds on --clients connections; then wait for the queue to drain."""
    before = queued(db, "complete")
    cpu0 = cpu_seconds(pid)
    start = time.perf_counter()
    figures = wrk(
        base, ids, token, seconds=args.seconds, connections=args.clients, script=LUA_PATCH
    )
    backlog = queued(db)
    accepted = int(figures["requests"] - figures["non2xx"])
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    if not args.wait:
        cpu = cpu_seconds(pid) - cpu0
        print(
            f"  wrk {args.clients} connections, {args.seconds} s: {figures['rps']:.0f} PATCH "
            f"requests/s, p50 {figures.get('p50', 0):.1f} ms, p99 {figures.get('p99', 0):.1f} ms "
            f"({accepted} accepted, {figures['non2xx']:.0f} not); server CPU "
            f"{cpu * 1000 / max(1, accepted):.2f} ms per PATCH ({load})"
        )
        return
    while queued(db):
        time.sleep(0.01)
    drained = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu0
    done = queued(db, "complete") - before
    print(
        f"sustained (wrk, {args.clients} connections, {args.seconds} s): "
        f"{figures['rps']:.0f} PATCH requests/s (p50 {figures.get('p50', 0):.1f} ms, "
        f"p99 {figures.get('p99', 0):.1f} ms; {accepted} accepted, {figures['non2xx']:.0f} not); "
        f"backlog when the last 202 was sent: {backlog}; "
        f"{done / drained:.0f} tasks/s accepted-to-complete "
        f"({done} tasks complete {drained:.2f} s after the first request)"
    )
    print(
        f"  server CPU {cpu * 1000 / max(1, done):.2f} ms per PATCH+task "
        f"({cpu / drained * 100:.0f}% of one core while it ran; {load})"
    )


def report_light(args: argparse.Namespace, tasks: list[dict[str, object]]) -> None:
    assert all(t["status"] == "complete" for t in tasks), tasks
    lat = [
        (parse(str(t["completed_date"])) - parse(str(t["request_date"]))).total_seconds() * 1000
        for t in tasks
    ]
    print(
        f"light load ({args.light} tasks, one every {args.gap * 1000:.0f} ms): "
        f"accepted-to-complete p50 {statistics.median(lat):.1f} ms, "
        f"p90 {pct(lat, 90):.1f} ms, p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms"
    )


async def run(
    args: argparse.Namespace,
    base: str,
    key: str,
    ids: list[str],
    db: Path,
    pid: int,
    light: bool = True,
) -> None:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        r = await client.post("/api/jwt", headers={"Authorization": key})
        client.headers["Authorization"] = f"Bearer {r.json()['jwt']}"

        # 1. Light load: one PATCH at a time, spaced out.
        locations = []
        for i in range(args.light if light else 0):
            r = await client.patch(f"/api/academic/enrollments/{ids[i]}", json=body(i))
            assert r.status_code == 202, r.text
            locations.append(r.headers["location"])
            await asyncio.sleep(args.gap)
        if locations:
            report_light(args, await wait_done(client, locations))

        # 2. Sustained: --clients at once, as fast as they are taken.
        if shutil.which("wrk"):
            token = client.headers["Authorization"].removeprefix("Bearer ")
            sustained_wrk(args, base, token, ids[args.light :], db, pid)
            return
        targets = [ids[args.light + i % (len(ids) - args.light)] for i in range(args.total)]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(args.total):
            queue.put_nowait(i)
        statuses: dict[int, int] = {}

        async def sender() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                resp = await client.patch(f"/api/academic/enrollments/{targets[i]}", json=body(i))
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

        cpu0 = cpu_seconds(pid)
        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(args.clients)))
        sent = time.perf_counter() - start
        backlog = queued(db)
        while args.wait and queued(db):
            await asyncio.sleep(0.01)
        drained = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu0
        load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        if not args.wait:
            print(
                f"  {args.total} PATCHes, {args.clients} clients: "
                f"{args.total / sent:.0f} PATCH requests/s (statuses {statuses}); server CPU "
                f"{cpu * 1000 / args.total:.2f} ms per PATCH ({load})"
            )
            return
        print(
            f"sustained ({args.total} PATCHes, {args.clients} clients): "
            f"{args.total / sent:.0f} PATCH requests/s (statuses {statuses}); "
            f"backlog when the last 202 was sent: {backlog}; "
            f"{args.total / drained:.0f} tasks/s accepted-to-complete "
            f"(all done {drained:.2f} s after the first request)"
        )
        print(
            f"  server CPU {cpu * 1000 / args.total:.2f} ms per PATCH+task "
            f"({cpu / drained * 100:.0f}% of one core while it ran; {load})"
        )


POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


async def drain(db_url: str, workers: list[subprocess.Popen[bytes]], logs: list[Path]) -> dict:
    """Wait for the workers to start, then for the queue to empty: the round's figures."""
    import asyncpg
    from sqlalchemy.engine import make_url

    launched = time.perf_counter()
    database = str(make_url(db_url).database)
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for proc, log in zip(workers, logs, strict=True):
            while "started (concurrency" not in log.read_text(errors="replace"):
                if proc.poll() is not None:
                    raise SystemExit(f"worker exited: {log.read_text()[-2000:]}")
                await asyncio.sleep(0.002)
        started = time.perf_counter()
        statements = await _statements_reset(conn)
        pids = [w.pid for w in workers]
        worker_cpu0 = cpu_seconds(*pids)
        pg_seen = await backends(database, conn)
        vacuum: dict[int, float] = {}
        sql = (
            "SELECT count(*) FROM tasks WHERE status = 'accepted'"
            " AND resource = 'academic.enrollments'"
        )
        while await conn.fetchval(sql):
            # Backends that connect during the drain count from zero. An autovacuum worker is
            # read as it goes (it may end before the drain does).
            for pid in await backends(database, conn):
                pg_seen.setdefault(pid, 0.0)
            for pid, cpu in (await backends(database, conn, "autovacuum worker")).items():
                vacuum[pid] = cpu
            await asyncio.sleep(0.02)
        done = time.perf_counter()
        worker_cpu = cpu_seconds(*pids) - worker_cpu0
        pg_cpu = sum(cpu_seconds(pid) - cpu0 for pid, cpu0 in pg_seen.items())
        top = await _statements(conn) if statements else []
        counts = await conn.fetchrow(
            # The PATCH tasks only: the worker's scheduler queues periodic tasks of its own.
            "SELECT (SELECT count(*) FROM tasks WHERE status = 'complete'"
            " AND resource = 'academic.enrollments') AS complete,"
            " (SELECT count(*) FROM enrollment_audit) AS audits"
        )
    finally:
        await conn.close()
    return {
        "from_start": done - started,
        "from_launch": done - launched,
        "worker_cpu": worker_cpu,
        "pg_cpu": pg_cpu,
        "vacuum_cpu": sum(vacuum.values()),
        # pg_stat_statements (when the server preloads it): the statements' execution time,
        # what the issue asks for beside /proc (wall time inside the executor: no parsing,
        # protocol or commit, but any wait on a lock counts).
        "stmt_ms": sum(r["ms"] for r in top) if statements else None,
        "stmt_calls": sum(r["calls"] for r in top) if statements else None,
        "top": top,
        "complete": int(counts["complete"]),
        "audits": int(counts["audits"]),
    }


async def _statements_reset(conn: Any) -> bool:
    """Start counting this database's statements afresh in pg_stat_statements; False when the
    server does not preload it (shared_preload_libraries)."""
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database"
            " WHERE datname = current_database()), 0)"
        )
        await conn.fetchval("SELECT count(*) FROM pg_stat_statements")
    except Exception:
        return False
    return True


async def _statements(conn: Any) -> list[dict[str, Any]]:
    """This database's statements since the reset (but the bench's own): calls, ms, text."""
    rows = await conn.fetch(
        "SELECT calls, total_exec_time + total_plan_time AS ms, query FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_stat_activity%'"
        " AND query NOT LIKE 'SELECT count(*) FROM tasks WHERE status%'"
        " ORDER BY 2 DESC"
    )
    return [{"calls": int(r["calls"]), "ms": float(r["ms"]), "query": r["query"]} for r in rows]


def postgres_round(args: argparse.Namespace, workers: int, tmp: Path) -> dict[str, Any]:
    """One round: a fresh database, --tasks PATCHes queued over HTTP, W workers drain them."""
    db_url, drop = fresh_database(tmp, args.postgres)
    env = {
        **os.environ,
        "REGISTRAR_DATABASE_URL": db_url,
        "REGISTRAR_LOG_JSON": "false",
        "REGISTRAR_RATE_LIMIT_PER_MINUTE": "0",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        registrar("migrate", env=env)
        key = service_account(env, "bench", WRITE)
        ids = seed_enrollments(db_url, args.tasks)
        with serve({**env, "REGISTRAR_LOG_LEVEL": "WARNING"}, "--no-worker", cwd=ROOT) as (
            _api,
            base,
        ):
            asyncio.run(enqueue(base, token(base, key), ids, args.tasks))
        logs = [tmp / f"worker-{secrets.token_hex(3)}.log" for _ in range(workers)]
        for i, log in enumerate(logs):
            cmd = command("worker", "--concurrency", str(args.concurrency))
            if args.pin:
                cmd = ["taskset", "-c", str(i % (os.cpu_count() or 1)), *cmd]
            with log.open("wb") as out:
                # The worker as deployed: its log level (INFO, a line per task) and settings.
                procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT))
        figures = asyncio.run(drain(db_url, procs, logs))
        if figures["complete"] != args.tasks or figures["audits"] != args.tasks:
            raise SystemExit(f"not every task ran exactly once: {figures}")
        return figures
    finally:
        for proc in procs:
            stop(proc)
        drop()


def postgres_bench(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="task-bench-pg-"))
    counts = [int(w) for w in args.workers.split(",")]
    results: dict[int, list[dict[str, Any]]] = {w: [] for w in counts}
    print(
        f"PostgreSQL worker drain: {args.tasks} PATCH tasks, each on its own enrollment, fresh "
        f"database per round; worker --concurrency {args.concurrency}"
        f"{', pinned one per CPU' if args.pin else ''}; {os.cpu_count()} cores",
        flush=True,
    )
    for round_ in range(args.rounds):
        for w in counts:
            f = postgres_round(args, w, tmp)
            results[w].append(f)
            n = args.tasks
            print(
                f"  round {round_ + 1}, {w} worker(s): {n / f['from_start']:.0f} tasks/s from "
                f"start ({n / f['from_launch']:.0f} from launch); worker CPU "
                f"{f['worker_cpu'] * 1000 / n:.2f} ms/task, PostgreSQL CPU "
                f"{f['pg_cpu'] * 1000 / n:.2f} ms/task (autovacuum meanwhile "
                f"{f['vacuum_cpu'] * 1000 / n:.2f})"
                + (
                    f"; pg_stat_statements {f['stmt_ms'] / n:.3f} ms/task, "
                    f"{f['stmt_calls'] / n:.2f} statements/task"
                    if f["stmt_ms"] is not None
                    else ""
                ),
                flush=True,
            )
            if args.statements and f["top"]:
                for r in f["top"][:12]:
                    q = " ".join(r["query"].split())[:110]
                    print(f"      {r['ms'] / n:.4f} ms/task {r['calls']:>6} calls  {q}")
    print(
        "\n| workers | tasks/s (from start) | from launch | worker CPU/task | PG CPU/task "
        "| autovacuum CPU/task | pg_stat_statements/task |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    n = args.tasks

    def stmt(rounds: list[dict[str, Any]]) -> str:
        ms = [r["stmt_ms"] / n for r in rounds if r["stmt_ms"] is not None]
        return f"{statistics.median(ms):.3f} ms" if ms else "n/a"

    for w in counts:
        rates = [n / r["from_start"] for r in results[w]]
        print(
            f"| {w} | {statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f}) "
            f"| {statistics.median(n / r['from_launch'] for r in results[w]):.0f} "
            f"| {statistics.median(r['worker_cpu'] * 1000 / n for r in results[w]):.2f} ms "
            f"| {statistics.median(r['pg_cpu'] * 1000 / n for r in results[w]):.2f} ms "
            f"| {statistics.median(r['vacuum_cpu'] * 1000 / n for r in results[w]):.2f} ms "
            f"| {stmt(results[w])} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--total", type=int, default=5000, help="PATCHes (without wrk)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk's run time")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--light", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.02)
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="do not wait for the queue to drain (with REGISTRAR_RUN_WORKER=false)",
    )
    parser.add_argument(
        "--no-split",
        dest="split",
        action="store_false",
        help="skip the PATCH-only/worker-only runs",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="in-process worker concurrency")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES,
        help="measure worker processes draining a PostgreSQL queue (this admin URL's server)",
    )
    parser.add_argument("--tasks", type=int, default=5000, help="--postgres: tasks per round")
    parser.add_argument("--rounds", type=int, default=3, help="--postgres: rounds per count")
    parser.add_argument("--workers", default="1,2", help="--postgres: worker processes per round")
    parser.add_argument("--pin", action="store_true", help="--postgres: worker i on CPU i")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="--postgres: print each round's costliest statements (pg_stat_statements)",
    )
    args = parser.parse_args()
    if args.postgres:
        postgres_bench(args)
        return

    tmp = Path(tempfile.mkdtemp(prefix="task-bench-"))
    db = tmp / "bench.db"
    env = {
        **os.environ,
        "REGISTRAR_DATABASE_URL": f"sqlite:///{db}",
        "REGISTRAR_LOG_LEVEL": "WARNING",
        "REGISTRAR_WORKER_CONCURRENCY": str(args.concurrency),
        "REGISTRAR_RATE_LIMIT_PER_MINUTE": "0",
    }
    registrar("migrate", env=env)
    key = service_account(env, "bench", WRITE)
    ids = seed_enrollments(env["REGISTRAR_DATABASE_URL"], 5000)

    with serve(env, cwd=ROOT) as (server, base):
        print(f"registrar serve on SQLite ({db}), in-process worker concurrency {args.concurrency}")
        print(f"server pid {server.pid}")
        asyncio.run(run(args, base, key, ids, db, server.pid))
    if not args.split:
        return

    # 3. The two halves apart: PATCHes into a server without a worker, then a worker process
    #    drains that backlog alone. Shows what each side costs and can do by itself.
    with serve(env, "--no-worker", cwd=ROOT) as (server, base):
        args.wait = False
        print("split: PATCH only (serve --no-worker):")
        asyncio.run(run(args, base, key, ids, db, server.pid, light=False))
    backlog = queued(db)
    worker = subprocess.Popen(command("worker", "--concurrency", str(args.concurrency)), env=env)
    try:
        t0 = time.perf_counter()
        cpu0 = 0.0
        while queued(db) >= backlog and time.perf_counter() - t0 < 30:
            time.sleep(0.005)  # started: migrations done, first claim made
        t0, cpu0 = time.perf_counter(), cpu_seconds(worker.pid)
        while queued(db):
            time.sleep(0.01)
        took = time.perf_counter() - t0
        cpu = cpu_seconds(worker.pid) - cpu0
        print(
            f"split: worker process alone drained {backlog} tasks at {backlog / took:.0f} tasks/s; "
            f"CPU {cpu * 1000 / backlog:.2f} ms per task"
        )
    finally:
        stop(worker)


if __name__ == "__main__":
    main()
