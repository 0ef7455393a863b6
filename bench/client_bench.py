"""Python client benchmark: what registrar_client adds over raw httpx, against `registrar serve`.

Measures, on one SQLite server with demo data (--enrollments, default 100,000):
  * GET by id at one connection, sequential: raw httpx (`client.get(url).json()`) against
    `registrar.enrollments.get(id)` (token handling, retry bookkeeping, error mapping, the model),
    sync and async. Runs alternate in rounds so drift hits both alike. Figures: mean wall time per
    request, the client's added wall time in percent (target < 10%), and the benchmark process's
    CPU per request (the client's own cost; the server is another process).
  * Paging the whole collection (--enrollments records, pagesize 1000): raw httpx following
    `Link: rel="next"` and decoding each page, against iterating `registrar.enrollments.list()`
    and touching each record's id. Wall time, and the share of it this process spent on CPU: a
    small share means the walk is bound by the server, not the client.

    /work/notes/bin/cpu-exclusive .venv/bin/python bench/client_bench.py [--enrollments 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, free_port, registrar, server, service_account, token
from registrar_client import AsyncRegistrar, Registrar

READ = "api:academic:enrollments:read api:academic:enrollments:read.sensitive"
READ += " urn:dartmouth:people:private"


BLOCK = 50  # requests per turn: raw and client alternate every BLOCK requests


def measure(fn: Callable[[str], object], ids: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds for fn over ids."""
    wall, cpu = time.perf_counter(), time.process_time()
    for eid in ids:
        fn(eid)
    return time.perf_counter() - wall, time.process_time() - cpu


async def ameasure(fn: Callable[[str], Awaitable[object]], ids: list[str]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for eid in ids:
        await fn(eid)
    return time.perf_counter() - wall, time.process_time() - cpu


class Tally:
    """Per-round totals of both sides, which take turns every BLOCK requests (so drift, and the
    other jobs on these two cores, fall on both alike)."""

    def __init__(self) -> None:
        self.raw: list[tuple[float, float]] = []
        self.ours: list[tuple[float, float]] = []

    def add(self, side: list[tuple[float, float]], figures: list[tuple[float, float]]) -> None:
        side.append((sum(w for w, _ in figures), sum(c for _, c in figures)))


def report(name: str, tally: Tally, n: int) -> None:
    ratios = [o[0] / r[0] for r, o in zip(tally.raw, tally.ours, strict=True)]
    raw_wall = statistics.median(w for w, _ in tally.raw) / n
    our_wall = statistics.median(w for w, _ in tally.ours) / n
    raw_cpu = statistics.median(c for _, c in tally.raw) / n
    our_cpu = statistics.median(c for _, c in tally.ours) / n
    print(
        f"{name}: raw httpx {raw_wall * 1e3:.3f} ms/request (client CPU {raw_cpu * 1e6:.0f} µs), "
        f"registrar_client {our_wall * 1e3:.3f} ms (client CPU {our_cpu * 1e6:.0f} µs): "
        f"{(statistics.median(ratios) - 1) * 100:+.1f}% wall (rounds "
        f"{', '.join(f'{(r - 1) * 100:+.1f}%' for r in ratios)}), "
        f"{(our_cpu - raw_cpu) * 1e6:+.0f} µs client CPU per request"
    )


def bench_get(base: str, key: str, jwt: str, ids: list[str], rounds: int) -> None:
    headers = {"Authorization": f"Bearer {jwt}"}
    with httpx.Client(headers=headers) as raw, Registrar(base, key) as client:

        def raw_get(eid: str) -> object:
            response = raw.get(f"{base}/api/academic/enrollments/{eid}")
            response.raise_for_status()
            return response.json()

        def our_get(eid: str) -> object:
            return client.enrollments.get(eid).id

        measure(raw_get, ids)  # warm: connections, the server's read cache, the token
        measure(our_get, ids)
        tally = Tally()
        for _ in range(rounds):
            raws, ours = [], []
            for i in range(0, len(ids), BLOCK):
                raws.append(measure(raw_get, ids[i : i + BLOCK]))
                ours.append(measure(our_get, ids[i : i + BLOCK]))
            tally.add(tally.raw, raws)
            tally.add(tally.ours, ours)
    report(f"GET by id, sync, {len(ids)} x {rounds} rounds", tally, len(ids))


async def bench_get_async(base: str, key: str, jwt: str, ids: list[str], rounds: int) -> None:
    headers = {"Authorization": f"Bearer {jwt}"}
    async with httpx.AsyncClient(headers=headers) as raw, AsyncRegistrar(base, key) as client:

        async def raw_get(eid: str) -> object:
            response = await raw.get(f"{base}/api/academic/enrollments/{eid}")
            response.raise_for_status()
            return response.json()

        async def our_get(eid: str) -> object:
            return (await client.enrollments.get(eid)).id

        await ameasure(raw_get, ids)
        await ameasure(our_get, ids)
        tally = Tally()
        for _ in range(rounds):
            raws, ours = [], []
            for i in range(0, len(ids), BLOCK):
                raws.append(await ameasure(raw_get, ids[i : i + BLOCK]))
                ours.append(await ameasure(our_get, ids[i : i + BLOCK]))
            tally.add(tally.raw, raws)
            tally.add(tally.ours, ours)
    report(f"GET by id, async, {len(ids)} x {rounds} rounds", tally, len(ids))


def bench_paging(base: str, key: str, jwt: str, total: int, runs: int = 4) -> None:
    """Both walkers are made (and logged in) before the clock starts, and alternate."""
    headers = {"Authorization": f"Bearer {jwt}"}
    with httpx.Client(headers=headers, timeout=60) as raw, Registrar(base, key, timeout=60) as ours:

        def raw_walk() -> int:
            seen = 0
            url: str | None = f"{base}/api/academic/enrollments?pagesize=1000"
            while url:
                response = raw.get(url)
                response.raise_for_status()
                for record in response.json():
                    seen += record["id"] is not None
                url = response.links.get("next", {}).get("url")
            return seen

        def our_walk() -> int:
            return sum(record.id is not None for record in ours.enrollments.list(pagesize=1000))

        walks = {"raw httpx following Link": raw_walk, "registrar_client": our_walk}
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in walks}
        for run in range(runs):
            order = list(walks.items())
            for name, walk in order if run % 2 == 0 else order[::-1]:  # who goes first alternates
                wall, cpu = time.perf_counter(), time.process_time()
                seen = walk()
                figures[name].append((time.perf_counter() - wall, time.process_time() - cpu))
                assert seen == total, (seen, total)
    for name, runs_ in figures.items():
        wall_s = statistics.median(w for w, _ in runs_)
        cpu_s = statistics.median(c for _, c in runs_)
        print(
            f"paging {total:,} records, pagesize 1000, {name}: {wall_s:.2f} s "
            f"({total / wall_s:,.0f} records/s; median of {len(runs_)}); this process's CPU "
            f"{cpu_s:.2f} s = {cpu_s / wall_s:.0%} of the wall time"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000, help="GETs per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "REGISTRAR_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "REGISTRAR_LOG_LEVEL": "WARNING",
            "REGISTRAR_RATE_LIMIT_PER_MINUTE": "0",
        }
        started = time.perf_counter()
        registrar("demo", "--enrollments", str(args.enrollments), env=env)
        print(
            f"demo data: {args.enrollments:,} enrollments in {time.perf_counter() - started:.1f} s"
        )
        key = service_account(env, "client-bench", READ)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve = [str(BIN / "registrar"), "serve", "--no-worker", "--port", str(port)]
        with server(serve, env, f"{base}/health"):
            jwt = token(base, key)
            with httpx.Client(headers={"Authorization": f"Bearer {jwt}"}) as c:
                page = c.get(f"{base}/api/academic/enrollments?pagesize=1000").json()
            ids = [r["id"] for r in page][: args.requests]
            ids = (ids * (args.requests // len(ids) + 1))[: args.requests]
            print(
                f"client: httpx {httpx.__version__}, Python {sys.version.split()[0]}, "
                f"{os.cpu_count()} cores shared with the server"
            )
            bench_get(base, key, jwt, ids, args.rounds)
            asyncio.run(bench_get_async(base, key, jwt, ids, args.rounds))
            bench_paging(base, key, jwt, args.enrollments)


if __name__ == "__main__":
    main()
