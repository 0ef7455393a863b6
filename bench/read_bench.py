"""Read benchmark (issue #2): GET by id and filtered pages on a large dataset, with wrk.

    .venv/bin/python bench/read_bench.py [--enrollments 1000000] [--database-url URL]

Fills the database with `registrar demo` if it holds fewer enrollments than asked, starts
`registrar serve --no-worker`, and prints requests/s and p50/p99 for GET by id and three indexed
filters, next to the same stack answering a constant enrollment (the framework's ceiling), then the
latency of page 1 and page 500 of one found set (by page number and by the Link header's cursor).

`--selective` measures only what issue 9 item 9 and issue 15 ask about: GET by id and the
selective pages (`netid=`, `section.id=`) with the default settings, then again with SQLite's read
cache off (PostgreSQL has none), and prints each page's share of GET by id's requests/s:

    .venv/bin/python bench/read_bench.py --selective --enrollments 200000
    .venv/bin/python bench/read_bench.py --selective --enrollments 200000 \
        --database-url postgresql://postgres@127.0.0.1:5432/registrar_read_bench
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BIN,
    ROOT,
    cpu_seconds,
    free_port,
    pct,
    registrar,
    server,
    service_account,
    timed_get,
    timed_paths,
    token,
    wrk,
)


async def sample(url: str, n: int) -> dict[str, list[str]]:
    from sqlalchemy import Connection, func, select

    from registrar.core.settings import Settings
    from registrar.db.engine import create_database
    from registrar.enrollments.models import Enrollment, Term
    from registrar.people.models import Person

    def read(connection: Connection) -> dict[str, list[str]]:
        count = connection.scalar(select(func.count()).select_from(Enrollment)) or 0
        rows = connection.execute(
            select(Enrollment.id, Enrollment.netid, Enrollment.section_id)
            # Records the bench's token may see (it has no private scope).
            .join(Person, Person.netid == Enrollment.netid)
            .where(Person.confidential.is_(False))
            .order_by(func.random())
            .limit(n)
        ).all()
        codes = sorted(connection.scalars(select(Term.sis_term_code).distinct()).all())
        return {
            "count": [str(count)],
            "ids": [r[0] for r in rows],
            "netids": [r[1] for r in rows],
            "sections": [r[2] for r in rows],
            "codes": [c for c in codes if c],
        }

    db = create_database(Settings(database_url=url))
    try:
        return await db.read(read)
    finally:
        await db.dispose()


def measure(
    base: str, paths: list[str], jwt: str, args: argparse.Namespace, pid: int | None = None
) -> dict[str, float]:
    """Warm up, then wrk over `paths`, then the light-load latency (one connection, sequential).
    With the server's `pid`, also its CPU per request under wrk (`cpu_us`: user + system, all
    threads), the figure that other load on the machine skews least."""
    wrk(base, paths[:50], jwt, seconds=2, connections=args.connections)
    cpu = cpu_seconds(pid) if pid else 0.0
    figures = wrk(base, paths, jwt, seconds=args.seconds, connections=args.connections)
    if pid and figures["requests"]:
        figures["cpu_us"] = (cpu_seconds(pid) - cpu) / figures["requests"] * 1e6
    light = timed_paths(base, paths, jwt, 300)
    figures["light_p50"], figures["light_p99"] = pct(light, 50), pct(light, 99)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--selective",
        action="store_true",
        help="only GET by id and the selective pages (netid=, section.id=), each with the "
        "default settings and with the read cache off (SQLite): issue 9 item 9, issue 15",
    )
    args = parser.parse_args()

    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{results / f'read-{args.enrollments}.db'}"
    env = {"REGISTRAR_DATABASE_URL": url, "REGISTRAR_LOG_LEVEL": "warning"}

    found = asyncio.run(sample(url, 1)) if _exists(url) else {"count": ["0"]}
    if int(found["count"][0]) < args.enrollments:
        print(
            f"filling {url} with {args.enrollments:,} enrollments (registrar demo) ...", flush=True
        )
        start = time.perf_counter()
        registrar("demo", "--enrollments", str(args.enrollments), env=env)
        print(f"  demo data in {time.perf_counter() - start:.1f} s")
    sub = f"bench-{int(time.time())}"
    # A typical reader: no urn:dartmouth:people:private, so FERPA hiding is in every query.
    key = service_account(
        env, sub, "api:academic:enrollments:read api:academic:enrollments:read.sensitive"
    )
    data = asyncio.run(sample(url, 5000))
    print(f"dataset: {int(data['count'][0]):,} enrollments; database {url.split('://')[0]}")

    port, ceiling_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    api = "/api/academic/enrollments"
    codes = data["codes"]
    mid = codes[len(codes) // 3]
    rows: list[tuple[str, dict[str, float]]] = []
    with server(
        [str(BIN / "registrar"), "serve", "--no-worker", "--port", str(port)], env, f"{base}/health"
    ) as proc:
        jwt = token(base, key)
        cases = {
            "GET by id (default settings)": [f"{api}/{i}" for i in data["ids"]],
            **selective_cases(api, data),
        }
        if not args.selective:
            cases[f"term.sis_term_code=<{mid} (page of 100)"] = [
                f"{api}?{urlencode({'term.sis_term_code': '<' + mid})}"
            ]
        for name, paths in cases.items():
            rows.append((name, measure(base, paths, jwt, args, proc.pid)))
    if args.selective:
        sqlite = url.startswith("sqlite")
        report(rows, args, sqlite=sqlite, other=uncached(env, key, data, args))
        return
    with server(
        [str(BIN / "registrar"), "serve", "--no-worker", "--port", str(port)], env, f"{base}/health"
    ):
        jwt = token(base, key)

        # Deep paging: page 1 and page 500 of one found set.
        first = f"{base}{api}?pagesize=100"
        import urllib.request

        req = urllib.request.Request(first, headers={"Authorization": f"Bearer {jwt}"})
        with urllib.request.urlopen(req) as response:
            key_header = response.headers["X-Request-ID"]
        cont = f"{base}{api}?{urlencode({'continuation_key': key_header, 'pagesize': 100})}"
        page1 = timed_get(cont + "&page=1", jwt, 200)
        deep = min(500, int(data["count"][0]) // 100)
        page500 = timed_get(cont + f"&page={deep}", jwt, 200)
        # The Link header's cursor for the deep page: walk the pages before it once.
        link = cont + "&page=1"
        for _ in range(deep - 1):
            req = urllib.request.Request(link, headers={"Authorization": f"Bearer {jwt}"})
            with urllib.request.urlopen(req) as response:
                nxt = re.search(r'<([^>]+)>;\s*rel="next"', response.headers["Link"])
            assert nxt
            link = nxt.group(1)
        page500_cursor = timed_get(link, jwt, 200)

    # GET by id once more with the read cache off: every lookup goes to SQLite.
    rows[1:1] = uncached(env, key, data, args, selective=False)

    ceiling_args = ["--port", str(ceiling_port), "--log-level", "warning", "--no-access-log"]
    ceiling_paths = [f"{api}/{i}" for i in data["ids"]]
    with server(
        [str(BIN / "uvicorn"), "--app-dir", str(ROOT / "bench"), "ceiling_app:app", *ceiling_args],
        {},
        f"http://127.0.0.1:{ceiling_port}/api/academic/enrollments/x",
    ):
        ceiling_base = f"http://127.0.0.1:{ceiling_port}"
        wrk(ceiling_base, ceiling_paths[:50], "none", seconds=2, connections=args.connections)
        ceiling = wrk(
            ceiling_base, ceiling_paths, "none", seconds=args.seconds, connections=args.connections
        )
    # The same server as `registrar serve` (middleware, token and scope checks) answering a
    # constant enrollment: the ceiling for what a database lookup may add.
    same_port = free_port()
    with server(
        [
            str(BIN / "uvicorn"),
            "--app-dir",
            str(ROOT / "bench"),
            "--factory",
            "same_server_app:create_app",
            "--port",
            str(same_port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-keep-alive",
            "65",
        ],
        env,
        f"http://127.0.0.1:{same_port}/health",
    ):
        same_base = f"http://127.0.0.1:{same_port}"
        same_paths = [f"/bench/constant/{i}" for i in data["ids"]]
        same = measure(same_base, same_paths, token(same_base, key), args)

    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s, one uvicorn process, 2 cores shared")
    print("(p50/p99 under load: 16 connections; light: one connection, sequential requests)")
    print(
        f"{'case':48} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}"
        f" {'light p50':>10} {'light p99':>10}"
    )
    for name, f in [
        ("ceiling: bare FastAPI, constant JSON", ceiling),
        ("same server, constant JSON (auth, middleware)", same),
        *rows,
    ]:
        print(
            f"{name:48} {f['rps']:9.0f} {f.get('p50', 0):8.2f} {f.get('p99', 0):8.2f} "
            f"{f['non2xx']:8.0f} {f.get('light_p50', 0):10.2f} {f.get('light_p99', 0):10.2f}"
        )
    for name, figures in rows[:2]:
        print(
            f"\n{name} = {100 * figures['rps'] / ceiling['rps']:.0f}% of bare FastAPI's "
            f"requests/s, {100 * figures['rps'] / same['rps']:.0f}% of the same server answering "
            "a constant",
            end="",
        )
    print()
    print("\nfound set, pagesize 100, sequential requests on one connection (ms):")
    for name, values in [
        ("page 1", page1),
        (f"page {deep} (?page={deep}, offset)", page500),
        (f"page {deep} (Link next cursor)", page500_cursor),
    ]:
        print(f"  {name:32} p50 {pct(values, 50):6.2f}   p99 {pct(values, 99):6.2f}")


def selective_cases(api: str, data: dict[str, list[str]]) -> dict[str, list[str]]:
    """The selective pages (issue 9 item 9): a student's enrollments, a section's."""
    return {
        "netid= (page of 100)": [f"{api}?{urlencode({'netid': n})}" for n in data["netids"]],
        "section.id= (page of 100)": [
            f"{api}?{urlencode({'section.id': s})}" for s in data["sections"]
        ],
    }


def uncached(
    env: dict[str, str],
    key: str,
    data: dict[str, list[str]],
    args: argparse.Namespace,
    *,
    selective: bool = True,
) -> list[tuple[str, dict[str, float]]]:
    """GET by id (and the selective pages) on a server with the read cache off: every read goes
    to the database (the same as the default on PostgreSQL, which has no read cache)."""
    if not env["REGISTRAR_DATABASE_URL"].startswith("sqlite"):
        return []
    api = "/api/academic/enrollments"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cases = {"GET by id": [f"{api}/{i}" for i in data["ids"]]}
    if selective:
        cases.update(selective_cases(api, data))
    rows = []
    with server(
        [str(BIN / "registrar"), "serve", "--no-worker", "--port", str(port)],
        {**env, "REGISTRAR_READ_CACHE_ENTRIES": "0"},
        f"{base}/health",
    ) as proc:
        jwt = token(base, key)
        for name, paths in cases.items():
            rows.append((f"{name}, read cache off", measure(base, paths, jwt, args, proc.pid)))
    return rows


def report(
    rows: list[tuple[str, dict[str, float]]],
    args: argparse.Namespace,
    *,
    sqlite: bool,
    other: list[tuple[str, dict[str, float]]],
) -> None:
    """The --selective table, and each selective page against GET by id (target: half)."""
    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s, one uvicorn process, 2 cores shared")
    print(
        f"{'case':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'light p50':>10}"
        f" {'CPU us/req':>11}"
    )
    for name, f in [*rows, *other]:
        print(
            f"{name:44} {f['rps']:9.0f} {f.get('p50', 0):8.2f} {f.get('p99', 0):8.2f} "
            f"{f['non2xx']:8.0f} {f.get('light_p50', 0):10.2f} {f.get('cpu_us', 0):11.0f}"
        )
    by_id = rows[0][1]["rps"]
    for name, f in rows[1:]:
        print(f"{name}: {100 * f['rps'] / by_id:.0f}% of GET by id with the default settings")
    if sqlite and other:
        for name, f in other[1:]:
            print(f"{name}: {100 * f['rps'] / other[0][1]['rps']:.0f}% of GET by id, cache off")


def _exists(url: str) -> bool:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).exists()
    return True


if __name__ == "__main__":
    main()
