"""Webhook delivery throughput: how fast one worker process delivers events to a receiver that
answers at once, and whether a receiver that hangs slows the others.

    .venv/bin/python bench/webhook_bench.py [--events 3000] [--postgres postgresql://...]

A fresh database with 1,000 enrollments; a receiver process (bench/webhook_receiver.py, uvicorn);
a `registrar worker` process. Phase 1: one subscription to /fast; N enrollment.updated events are
recorded in one transaction (as a load records them) and the clock runs from that commit until the
receiver has had all N. Phase 2: the same, with a second subscription (another account) to /hang,
which never answers: its deliveries time out, and the /fast figure should not move.
Prints events/s per phase and the worker's CPU seconds. Run it under /work/notes/bin/cpu-exclusive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    command,
    cpu_seconds,
    free_port,
    fresh_database,
    registrar,
    seed_enrollments,
    server,
    service_account,
    stop,
)

READ = "api:academic:enrollments:read"


def counts(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as response:
        return dict(json.loads(response.read()))


def subscribe(database_url: str, sub: str, url: str) -> None:
    from registrar.core.clock import utcnow
    from registrar.core.settings import Settings
    from registrar.db.engine import create_database
    from registrar.webhooks import repository
    from registrar.webhooks.service import new_secret

    async def run() -> None:
        db = create_database(Settings(database_url=database_url))
        try:
            await db.write(
                repository.insert_webhook,
                {
                    "id": secrets.token_hex(12),
                    "sub": sub,
                    "url": url,
                    "types": ["enrollment.updated"],
                    "secret": new_secret(),
                    "created": utcnow(),
                    "status": "active",
                },
            )
        finally:
            await db.dispose()

    asyncio.run(run())


def record_updates(database_url: str, ids: list[str], n: int) -> float:
    """n enrollment.updated events in one transaction; the monotonic time of its commit."""
    from sqlalchemy import Connection

    from registrar.core.settings import Settings
    from registrar.db.engine import create_database
    from registrar.events.record import Change, record

    changes = [
        Change(
            "enrollment.updated",
            ids[i % len(ids)],
            "sis",
            ids[i % len(ids)].rsplit("-", 2)[1],
            ("is_active",),
        )
        for i in range(n)
    ]

    def write(connection: Connection) -> None:
        record(connection, changes)

    async def run() -> float:
        db = create_database(Settings(database_url=database_url))
        try:
            await db.write(write)
            return time.monotonic()
        finally:
            await db.dispose()

    return asyncio.run(run())


def wait_count(port: int, path: str, n: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while counts(port).get(path, 0) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{path}: {counts(port).get(path, 0)} of {n} after {timeout:g} s")
        time.sleep(0.01)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (default: SQLite)")
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = fresh_database(Path(tmp), args.postgres)
        env = {
            "REGISTRAR_DATABASE_URL": url,
            "REGISTRAR_LOG_LEVEL": "WARNING",
            "REGISTRAR_WEBHOOK_ALLOW_PRIVATE": "true",
        }
        try:
            registrar("migrate", env=env)
            ids = seed_enrollments(url, 1000)
            service_account(env, "bench-fast", READ)
            service_account(env, "bench-hang", READ)
            port = free_port()
            receiver = [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(__file__).parent),
                "webhook_receiver:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--http",
                "httptools",
            ]
            with server(receiver, {}, f"http://127.0.0.1:{port}/count"):
                subscribe(url, "bench-fast", f"http://127.0.0.1:{port}/fast")
                worker = subprocess.Popen(command("worker"), env={**os.environ, **env})
                try:
                    if os.environ.get("WEBHOOK_BENCH_SHOW_PID"):  # to attach a profiler
                        print(f"worker pid {worker.pid}", flush=True)
                    time.sleep(3)  # started, migrated, listening
                    cpu0 = cpu_seconds(worker.pid)
                    t0 = record_updates(url, ids, n)
                    t1 = wait_count(port, "/fast", n, 300)
                    cpu1 = cpu_seconds(worker.pid)
                    print(
                        f"{'postgresql' if args.postgres else 'sqlite'}: one receiver answering "
                        f"at once: {n} events in {t1 - t0:.2f} s = {n / (t1 - t0):,.0f} events/s; "
                        f"worker CPU {cpu1 - cpu0:.2f} s ({(cpu1 - cpu0) / n * 1e3:.2f} ms/event)"
                    )
                    subscribe(url, "bench-hang", f"http://127.0.0.1:{port}/hang")
                    time.sleep(1)
                    cpu0 = cpu_seconds(worker.pid)
                    t0 = record_updates(url, ids, n)
                    t1 = wait_count(port, "/fast", 2 * n, 300)
                    cpu1 = cpu_seconds(worker.pid)
                    hung = counts(port).get("/hang", 0)
                    print(
                        f"with a second subscription whose receiver hangs: {n} events to the "
                        f"fast one in {t1 - t0:.2f} s = {n / (t1 - t0):,.0f} events/s "
                        f"(attempts started at the hanging one meanwhile: {hung}); "
                        f"worker CPU {cpu1 - cpu0:.2f} s"
                    )
                finally:
                    stop(worker)
        finally:
            drop()


if __name__ == "__main__":
    main()
