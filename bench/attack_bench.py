"""Attack benchmark (issue 9 item 1): a `?netid=` page while 8 wide attack requests are in flight,
and while 8 are sent and abandoned (the client hangs up), on a large table.

    .venv/bin/python bench/attack_bench.py [--enrollments 1000000] [--postgres ADMIN_URL]
        [--seconds 20] [--attackers 8] [--keep]

Fills a database with `registrar demo` (SQLite: bench/results/attack-N.db, kept for the next run;
PostgreSQL: a database of its own on ADMIN_URL's server, dropped at the end unless --keep), starts
`registrar serve --no-worker` with the default settings, and prints the netid page's latency
(one connection, sequential requests) with no attack, with the attackers in flight, and with the
attackers abandoning theirs, plus what the attacks were answered and the server's CPU.

The issue's own attack (`id=*q00*,...,*q158*,*` x 50, 51 KB) is refused at once now (400, the
query-string limit), so the attackers send the costliest request the limits allow: 8 wildcards,
each value ending in `*` so that every term runs on every row, over the whole table.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ROOT,
    cpu_seconds,
    fresh_database,
    pct,
    pg_scalar,
    registrar,
    serve,
    service_account,
    timed_requests,
    token,
)

API = "/api/academic/enrollments"
ISSUE_ATTACK = (
    API
    + "?"
    + urlencode([("id", ",".join(f"*q{i:02d}*" for i in range(159)) + ",*")] * 50, safe="*,")
)
# The costliest request within the default limits: 8 wildcards (4 per value at most), every
# term made to run by the `*` after it, on every row.
WIDE_ATTACK = (
    API + "?" + urlencode([("id", "*q0*,*"), ("id", "*q1*,*"), ("section.id", "*,*")], safe="*,")
)


def request_bytes(path: str, jwt: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {jwt}\r\n\r\n".encode()


def status_of(sock: socket.socket) -> int:
    """Read one answer's status line, then the rest of what comes until the answer ends."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return 0
        data += chunk
    return int(data.split(b" ", 2)[1])


class Attackers:
    """`n` threads sending WIDE_ATTACK over and over: waiting for each answer (`abandon` None)
    or hanging up `abandon` seconds after sending it."""

    def __init__(self, port: int, jwt: str, n: int, abandon: float | None) -> None:
        self.port, self.jwt, self.abandon = port, jwt, abandon
        self.stop = threading.Event()
        self.answers: dict[int, int] = {}
        self.sent = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]

    def __enter__(self) -> Attackers:
        for t in self.threads:
            t.start()
        time.sleep(1.0)  # let them fill the lanes before measuring
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)

    def run(self) -> None:
        while not self.stop.is_set():
            with socket.create_connection(("127.0.0.1", self.port)) as sock:
                sock.sendall(request_bytes(WIDE_ATTACK, self.jwt))
                with self.lock:
                    self.sent += 1
                if self.abandon is not None:
                    self.stop.wait(self.abandon)
                    continue  # hang up without reading
                sock.settimeout(600)
                code = status_of(sock)
            with self.lock:
                self.answers[code] = self.answers.get(code, 0) + 1


def netid_latencies(base: str, jwt: str, netids: list[str], seconds: float) -> list[float]:
    """Sequential `?netid=` pages on one keep-alive connection for `seconds`; latencies in ms."""
    paths = [f"{API}?{urlencode({'netid': netid})}" for netid in netids]
    return timed_requests(base, paths, jwt, seconds=seconds)


async def sample_netids(url: str, n: int) -> tuple[int, list[str]]:
    from sqlalchemy import Connection, func, select

    from registrar.core.settings import Settings
    from registrar.db.engine import create_database
    from registrar.enrollments.models import Enrollment
    from registrar.people.models import Person

    def read(connection: Connection) -> tuple[int, list[str]]:
        count = connection.scalar(select(func.count()).select_from(Enrollment)) or 0
        netids = connection.scalars(
            select(Enrollment.netid)
            .join(Person, Person.netid == Enrollment.netid)
            .where(Person.confidential.is_(False))
            .order_by(func.random())
            .limit(n)
        ).all()
        return int(count), list(netids)

    db = create_database(Settings(database_url=url))
    try:
        return await db.read(read)
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=None, help="an admin URL: run on PostgreSQL")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()

    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    drop = None
    if args.postgres:
        url, drop = fresh_database(results, args.postgres)
        count = 0
    else:
        url = f"sqlite:///{results / f'attack-{args.enrollments}.db'}"
        db_file = results / f"attack-{args.enrollments}.db"
        count = asyncio.run(sample_netids(url, 1))[0] if db_file.exists() else 0
    env = {"REGISTRAR_DATABASE_URL": url, "REGISTRAR_LOG_LEVEL": "warning"}
    try:
        if count < args.enrollments:
            print(f"filling {url.split('://')[0]} with {args.enrollments:,} enrollments ...")
            start = time.perf_counter()
            registrar("demo", "--enrollments", str(args.enrollments), env=env)
            print(f"  demo data in {time.perf_counter() - start:.0f} s", flush=True)
        if args.postgres:
            asyncio.run(pg_scalar(url, "SELECT 1 FROM (SELECT pg_stat_reset()) s"))
        key = service_account(env, f"attack-{int(time.time())}", "api:academic:enrollments:read")
        count, netids = asyncio.run(sample_netids(url, 2000))
        print(f"dataset: {count:,} enrollments; {url.split('://')[0]}; default settings")
        run(env, key, netids, args)
    finally:
        if drop is not None and not args.keep:
            drop()


def run(env: dict[str, str], key: str, netids: list[str], args: argparse.Namespace) -> None:
    with serve(env, "--no-worker") as (proc, base):
        port = int(base.rsplit(":", 1)[1])
        jwt = token(base, key)
        req = urllib.request.Request(
            base + ISSUE_ATTACK, headers={"Authorization": f"Bearer {jwt}"}
        )
        start = time.perf_counter()
        try:
            urllib.request.urlopen(req)
            issue_status = 200
        except urllib.error.HTTPError as exc:
            issue_status = exc.code
        issue_ms = (time.perf_counter() - start) * 1000
        print(
            f"the issue's attack ({len(ISSUE_ATTACK):,} bytes): {issue_status} in {issue_ms:.1f} ms"
        )
        print(f"the attackers send: {WIDE_ATTACK}")

        netid_latencies(base, jwt, netids, 2)  # warm up
        rows = []
        for name, abandon in (
            ("no attack", -1.0),
            (f"{args.attackers} attacks in flight", None),
            (f"{args.attackers} attacks abandoned after 0.5 s", 0.5),
        ):
            cpu = cpu_seconds(proc.pid)
            if abandon == -1.0:
                values = netid_latencies(base, jwt, netids, args.seconds)
                attack = None
            else:
                with Attackers(port, jwt, args.attackers, abandon) as attack:
                    values = netid_latencies(base, jwt, netids, args.seconds)
            used = cpu_seconds(proc.pid) - cpu
            rows.append((name, values, attack, used))
            time.sleep(2)

        with urllib.request.urlopen(base + "/metrics") as response:
            metrics = response.read().decode()
    print(f"\n`?netid=` page, one connection, sequential, {args.seconds:.0f} s per case (ms):")
    print(f"{'case':40} {'n':>6} {'p50':>7} {'p99':>7} {'max':>8}  server CPU  attacks")
    for name, values, attack, used in rows:
        answered = "" if attack is None else f"sent {attack.sent}, answered {attack.answers}"
        print(
            f"{name:40} {len(values):6d} {pct(values, 50):7.2f} {pct(values, 99):7.2f} "
            f"{max(values):8.2f}  {used:6.1f} s   {answered}"
        )
    print("\nreads stopped (server's /metrics):")
    for line in metrics.splitlines():
        if line.startswith("registrar_reads_stopped{"):
            print("  " + line)


if __name__ == "__main__":
    main()
