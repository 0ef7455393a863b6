"""registrar's PostgreSQL worker beside its peers, in the same runs (issue 15's table).

Per round a fresh PostgreSQL database (dropped after), migrated by registrar and seeded with
--tasks enrollments; then --tasks tasks, each on its own enrollment, each updating it and inserting
one audit row in one PostgreSQL transaction:

  * registrar: PATCHes queued over HTTP (`registrar serve --no-worker`, then stopped), drained by
    `registrar worker` processes (bench/task_bench.py's round: registrar does more per task, see
    its docstring);
  * dramatiq + Redis (8 worker threads a process), Celery + Redis (prefork, a child per core,
    acks_late), procrastinate (8 threads a process): queued directly, drained by their workers
    (bench/peers_worker.py, run with --python, the interpreter that has the `peers` extra).

Timed from the workers' start ("started") until every task's audit row exists; worker CPU from
/proc of the worker processes and their children; PostgreSQL CPU from /proc of the database's
client backends (autovacuum apart) and, when the server preloads it, pg_stat_statements' execution
time. Median of --rounds per cell.

    pip install -e '.[peers]'    # dramatiq, Celery, procrastinate, redis, psycopg
    python bench/peers_bench.py [--tasks 5000] [--rounds 1] [--workers 1,2] [--peers ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import backends, children, cpu_seconds, fresh_database, registrar, seed_enrollments
from task_bench import POSTGRES, _statements, _statements_reset, postgres_round

HERE = Path(__file__).resolve().parent
PEERS = ("dramatiq", "celery", "procrastinate")


def flush_redis(python: str, url: str) -> None:
    """Empty the bench's own Redis database (its number in the URL), nothing else (with the
    peers' interpreter, which has the redis client)."""
    code = "import redis, sys; redis.Redis.from_url(sys.argv[1]).flushdb()"
    subprocess.run([python, "-c", code, url], check=True)


async def drain(db_url: str, workers: list[subprocess.Popen[bytes]], n: int) -> dict[str, Any]:
    import asyncpg
    from sqlalchemy.engine import make_url

    database = str(make_url(db_url).database)
    conn = await asyncpg.connect(db_url)
    try:
        started = time.perf_counter()
        pids = [w.pid for w in workers]
        worker_cpu0 = cpu_seconds(*[p for pid in pids for p in children(pid)])
        pg_seen = await backends(database, conn)
        statements = await _statements_reset(conn)
        vacuum: dict[int, float] = {}
        tree: set[int] = set()
        while await conn.fetchval("SELECT count(*) FROM enrollment_audit") < n:
            for pid in pids:
                tree.update(children(pid))  # prefork children and the like, read at the end
            for pid in await backends(database, conn):
                pg_seen.setdefault(pid, 0.0)
            for pid, cpu in (await backends(database, conn, "autovacuum worker")).items():
                vacuum[pid] = cpu
            if any(w.poll() is not None for w in workers):
                raise SystemExit("a peer worker exited during the drain")
            await asyncio.sleep(0.02)
        done = time.perf_counter()
        worker_cpu = cpu_seconds(*tree) - worker_cpu0
        pg_cpu = sum(cpu_seconds(pid) - cpu0 for pid, cpu0 in pg_seen.items())
        top = await _statements(conn) if statements else []
    finally:
        await conn.close()
    return {
        "from_start": done - started,
        "worker_cpu": worker_cpu,
        "pg_cpu": pg_cpu,
        "vacuum_cpu": sum(vacuum.values()),
        "stmt_ms": sum(r["ms"] for r in top) if statements else None,
    }


def peer_round(args: argparse.Namespace, peer: str, workers: int, tmp: Path) -> dict[str, Any]:
    db_url, drop = fresh_database(tmp, args.postgres)
    env = {
        **os.environ,
        "REGISTRAR_DATABASE_URL": db_url,
        "PEERS_DATABASE_URL": db_url,
        "PEERS_REDIS_URL": args.redis,
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        registrar("migrate", env=env)
        ids = seed_enrollments(db_url, args.tasks)
        flush_redis(args.python, args.redis)
        script = str(HERE / "peers_worker.py")
        subprocess.run(
            [args.python, script, "enqueue", peer],
            input="\n".join(ids).encode(),
            env=env,
            check=True,
        )
        logs = []
        for i in range(workers):
            log = tmp / f"{peer}-{i}.log"
            logs.append(log)
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [args.python, script, "work", peer],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        for proc, log in zip(procs, logs, strict=True):
            while "started" not in log.read_text(errors="replace"):
                if proc.poll() is not None:
                    raise SystemExit(f"{peer} worker exited: {log.read_text()[-2000:]}")
                time.sleep(0.002)
        return asyncio.run(drain(db_url, procs, args.tasks))
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--postgres", default=POSTGRES, help="admin URL of the server")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11", help="flushed each round")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the extra")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--peers", default="registrar," + ",".join(PEERS))
    parser.add_argument("--concurrency", type=int, default=4, help="registrar worker")
    args = parser.parse_args()
    # What task_bench's round reads from its own arguments.
    args.pin = False
    args.statements = False
    counts = [int(w) for w in args.workers.split(",")]
    names = args.peers.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="peers-bench-"))
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    n = args.tasks
    print(f"{n} tasks per round, fresh database each; {os.cpu_count()} cores", flush=True)
    for round_ in range(args.rounds):
        for name in names:
            for w in counts:
                if name == "registrar":
                    f = postgres_round(args, w, tmp)
                else:
                    f = peer_round(args, name, w, tmp)
                results.setdefault((name, w), []).append(f)
                stmt = f" pg_stat_statements {f['stmt_ms'] / n:.3f}" if f["stmt_ms"] else ""
                print(
                    f"  round {round_ + 1} {name} x{w}: {n / f['from_start']:.0f} tasks/s; "
                    f"worker CPU {f['worker_cpu'] * 1000 / n:.2f} ms/task, PostgreSQL CPU "
                    f"{f['pg_cpu'] * 1000 / n:.2f} ms/task (autovacuum "
                    f"{f['vacuum_cpu'] * 1000 / n:.2f});{stmt}",
                    flush=True,
                )

    def cell(name: str, w: int, key: str, scale: float, fmt: str) -> str:
        values = [r[key] * scale for r in results[(name, w)] if r.get(key) is not None]
        if not values:
            return "n/a"
        if len(values) == 1:
            return format(values[0], fmt)
        return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-" + (
            f"{format(max(values), fmt)})"
        )

    print(
        "\n| queue | workers | tasks/s | worker CPU/task | PostgreSQL CPU/task "
        "| pg_stat_statements/task |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        for w in counts:
            rates = [n / r["from_start"] for r in results[(name, w)]]
            rate = (
                f"{statistics.median(rates):,.0f}"
                if len(rates) == 1
                else f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"
            )
            print(
                f"| {name} | {w} | {rate} | {cell(name, w, 'worker_cpu', 1000 / n, '.2f')} ms "
                f"| {cell(name, w, 'pg_cpu', 1000 / n, '.2f')} ms "
                f"| {cell(name, w, 'stmt_ms', 1 / n, '.3f')} ms |"
            )


if __name__ == "__main__":
    main()
