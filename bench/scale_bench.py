"""Issue #4 scaling figures on PostgreSQL: tasks/s with 1, 2, 4 worker processes; GET-by-id
requests/s with 1 and 2 API processes.

    .venv/bin/python bench/scale_bench.py [ADMIN_URL] [--tasks 3000] [--workers 1,2,4]

ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres) names the server; the bench
creates a fresh database there and drops it at the end.

Tasks: per round, W `registrar worker --concurrency 4` processes start and are then paused
(SIGSTOP) while N PATCHes are queued through one `registrar serve --no-worker`; the clock runs from
SIGCONT until the queue is empty, so start-up and enqueueing are not in the drain figure. CPU is
read from /proc (utime + stime) for the workers, the API and every postgres process (which includes
any other database load on the box: run it on a quiet machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from common import (
    BIN,
    children,
    cpu_seconds,
    enqueue,
    free_port,
    fresh_database,
    pg_execute,
    pg_scalar,
    postgres_pids,
    registrar,
    seed_enrollments,
    server,
    service_account,
    token,
    wait_http,
    wrk,
)

SCOPES = "api:academic:enrollments:write api:academic:enrollments:read"


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(BIN / "registrar"), "worker", "--concurrency", "4"],
            env={**os.environ, **env, "REGISTRAR_LOG_LEVEL": "INFO"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_started(log: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 60
    while "started (concurrency" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def task_round(
    db_url: str,
    env: dict[str, str],
    base: str,
    api_pid: int,
    jwt: str,
    ids: list[str],
    n: int,
    workers: int,
    tmp: Path,
) -> dict[str, float]:
    asyncio.run(pg_execute(db_url, "TRUNCATE tasks, enrollment_audit, idempotency_keys"))
    logs = [tmp / f"worker-{workers}-{i}.log" for i in range(workers)]
    procs = [start_worker(env, log) for log in logs]
    try:
        for proc, log in zip(procs, logs, strict=True):
            wait_started(log, proc)
        for proc in procs:
            proc.send_signal(signal.SIGSTOP)  # queue everything first: time the drain alone
        enqueue_rate = asyncio.run(enqueue(base, jwt, ids, n))
        pids = [p.pid for p in procs]
        pg = postgres_pids()
        cpu0 = (cpu_seconds(*pids), cpu_seconds(*children(api_pid)), cpu_seconds(*pg))
        started = time.perf_counter()
        for proc in procs:
            proc.send_signal(signal.SIGCONT)
        while asyncio.run(
            pg_scalar(db_url, "SELECT count(*) FROM tasks WHERE status <> 'complete'")
        ):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu1 = (cpu_seconds(*pids), cpu_seconds(*children(api_pid)), cpu_seconds(*pg))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "workers": workers,
        "enqueue_rps": enqueue_rate,
        "tasks_per_s": n / seconds,
        "seconds": seconds,
        # Cores used during the drain (1.0 = one core busy all the time).
        "cpu_workers": (cpu1[0] - cpu0[0]) / seconds,
        "cpu_api": (cpu1[1] - cpu0[1]) / seconds,
        "cpu_postgres": (cpu1[2] - cpu0[2]) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "admin_url", nargs="?", default="postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per GET round")
    args = parser.parse_args()

    tmp = Path(f"/tmp/registrar-scale-{secrets.token_hex(4)}")
    tmp.mkdir()
    db_url, drop = fresh_database(tmp, args.admin_url)
    env = {
        "REGISTRAR_DATABASE_URL": db_url,
        "REGISTRAR_LOG_JSON": "false",
        "REGISTRAR_LOG_LEVEL": "WARNING",
        "REGISTRAR_RATE_LIMIT_PER_MINUTE": "0",
    }
    try:
        registrar("migrate", env=env)
        key = service_account(env, "bench", SCOPES)
        ids = seed_enrollments(db_url, 1000)

        rows = []
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api_args = [str(BIN / "registrar"), "serve", "--no-worker", "--port", str(port)]
        with server(api_args, env, f"{base}/health") as api:
            jwt = token(base, key)
            for w in (int(x) for x in args.workers.split(",")):
                rows.append(task_round(db_url, env, base, api.pid, jwt, ids, args.tasks, w, tmp))
                print(rows[-1], flush=True)

        gets = []
        paths = [f"/api/academic/enrollments/{eid}" for eid in ids]
        for processes in (1, 2):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            cmd = [
                str(BIN / "registrar"),
                "serve",
                "--no-worker",
                "--port",
                str(port),
                "--processes",
                str(processes),
            ]
            with server(cmd, env, f"{base}/health") as api:
                wait_http(f"{base}/health")
                jwt = token(base, key)
                wrk(base, paths, jwt, seconds=2, connections=32)  # warm every process's pool
                pg = postgres_pids()
                c0 = (cpu_seconds(*children(api.pid)), cpu_seconds(*pg))
                t0 = time.perf_counter()
                fig = wrk(base, paths, jwt, seconds=args.seconds, connections=32)
                dt_ = time.perf_counter() - t0
                c1 = (cpu_seconds(*children(api.pid)), cpu_seconds(*pg))
                fig.update(
                    processes=processes,
                    cpu_api=(c1[0] - c0[0]) / dt_,
                    cpu_postgres=(c1[1] - c0[1]) / dt_,
                )
                gets.append(fig)
                print(fig, flush=True)

        print(
            f"\nPostgreSQL, {args.tasks} PATCH tasks, worker --concurrency 4, {os.cpu_count()} "
            "cores shared by everything"
        )
        print(
            "| workers | tasks/s | drain s | enqueue req/s | CPU workers | CPU API | CPU postgres |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(
                f"| {r['workers']} | {r['tasks_per_s']:.0f} | {r['seconds']:.1f} | "
                f"{r['enqueue_rps']:.0f} | {r['cpu_workers']:.2f} | {r['cpu_api']:.2f} | "
                f"{r['cpu_postgres']:.2f} |"
            )
        print("\nGET /api/academic/enrollments/{id}, wrk -c32 (wrk on the same cores)")
        print("| API processes | req/s | p50 ms | p99 ms | non-2xx | CPU API | CPU postgres |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for g in gets:
            print(
                f"| {g['processes']:.0f} | {g['rps']:.0f} | {g.get('p50', 0):.1f} | "
                f"{g.get('p99', 0):.1f} | {g['non2xx']:.0f} | {g['cpu_api']:.2f} | "
                f"{g['cpu_postgres']:.2f} |"
            )
    finally:
        drop()


if __name__ == "__main__":
    main()
