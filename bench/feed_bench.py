"""Reading the event feed from its start: is page 1,000 as fast as page 1?

    .venv/bin/python bench/feed_bench.py [--events 1000000] [--postgres postgresql://...]

A fresh database with 1,000 enrollments and N events about them (mostly enrollment.updated, a
tenth enrollment.created), filled set-based: 1,000 recorded as a load records them, then one
INSERT ... SELECT of their cross product with 999 of them (not over HTTP). Then `registrar serve`,
and one client reads GET /api/events?pagesize=1000 from the start, following X-Next-Cursor, over
one keep-alive connection, until a page comes back empty. The token has
api:academic:enrollments:read only (no read.sensitive, no people:private: the reader the feed
filters the most for). Prints the first and last ten pages' mean, p50/p99 over all pages, the
total and events/s, and the server's CPU. Run it under /work/notes/bin/cpu-exclusive.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    cpu_seconds,
    fresh_database,
    pct,
    registrar,
    seed_enrollments,
    serve,
    service_account,
    token,
)

READ = "api:academic:enrollments:read"
PAGE = 1000


def fill(database_url: str, ids: list[str], n: int) -> float:
    """n events about `ids` (len(ids) of them recorded as a load records them, the rest one
    INSERT ... SELECT); seconds taken."""
    from sqlalchemy import Connection, text

    from registrar.core.settings import Settings
    from registrar.db.engine import create_database
    from registrar.events.record import Change, record

    seed = len(ids)
    changes = [
        Change(
            "enrollment.created" if i % 10 == 0 else "enrollment.updated",
            eid,
            "sis",
            eid.rsplit("-", 2)[1],
            None if i % 10 == 0 else ("is_active",),
        )
        for i, eid in enumerate(ids)
    ]
    copies = -(-n // seed) - 1  # the cross product's second factor

    def write(connection: Connection) -> None:
        record(connection, changes)
        connection.execute(
            text(
                "INSERT INTO events (type, subject, origin, netid, changed, requester, time) "
                "SELECT e.type, e.subject, e.origin, e.netid, e.changed, e.requester, e.time "
                "FROM events e CROSS JOIN (SELECT position FROM events ORDER BY position "
                "LIMIT :copies) AS k ORDER BY k.position, e.position"
            ),
            {"copies": copies},
        )
        extra = seed * (copies + 1) - n
        if extra > 0:
            connection.execute(
                text(
                    "DELETE FROM events WHERE position IN "
                    "(SELECT position FROM events ORDER BY position DESC LIMIT :extra)"
                ),
                {"extra": extra},
            )

    async def run() -> float:
        db = create_database(Settings(database_url=database_url))
        try:
            started = time.perf_counter()
            await db.write(write)
            if database_url.startswith("postgresql"):
                await db.write(lambda c: c.execute(text("ANALYZE events")))
            return time.perf_counter() - started
        finally:
            await db.dispose()

    return asyncio.run(run())


def read_all(base: str, jwt: str) -> tuple[list[float], int]:
    """Every page's latency (ms) reading the whole feed; the number of events read."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    headers = {"Authorization": f"Bearer {jwt}"}
    times: list[float] = []
    total = 0
    path = f"/api/events?pagesize={PAGE}"
    while True:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}: {body[:300]!r}")
        events = json.loads(body)
        if not events:
            break
        times.append(elapsed)
        total += len(events)
        path = f"/api/events?pagesize={PAGE}&after={response.getheader('X-Next-Cursor')}"
    conn.close()
    return times, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (default: SQLite)")
    args = parser.parse_args()
    db_name = "postgresql" if args.postgres else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = fresh_database(Path(tmp), args.postgres)
        env = {"REGISTRAR_DATABASE_URL": url, "REGISTRAR_LOG_LEVEL": "WARNING"}
        try:
            registrar("migrate", env=env)
            ids = seed_enrollments(url, 1000)
            filled = fill(url, ids, args.events)
            print(f"{db_name}: {args.events:,} events filled in {filled:.1f} s", flush=True)
            key = service_account(env, "bench-feed", READ)
            with serve(env) as (proc, base):
                jwt = token(base, key)
                cpu0 = cpu_seconds(proc.pid)
                started = time.perf_counter()
                times, total = read_all(base, jwt)
                elapsed = time.perf_counter() - started
                cpu = cpu_seconds(proc.pid) - cpu0
            if total != args.events:
                raise SystemExit(f"read {total} events of {args.events}")
            first = sum(times[:10]) / 10
            last = sum(times[-10:]) / 10
            print(
                f"{db_name}: {total:,} events in {len(times)} pages of {PAGE} in {elapsed:.1f} s "
                f"({total / elapsed:,.0f} events/s; server CPU {cpu:.1f} s); per page: "
                f"first 10 mean {first:.1f} ms, last 10 mean {last:.1f} ms, "
                f"p50 {pct(times, 50):.1f} ms, p99 {pct(times, 99):.1f} ms, "
                f"max {max(times):.1f} ms"
            )
        finally:
            drop()


if __name__ == "__main__":
    main()
