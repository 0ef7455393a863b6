"""What metrics, rate limiting and the access log cost: GET-by-id requests/s with them off and on.

    .venv/bin/python bench/overhead_bench.py [--enrollments 10000] [--seconds 10] [--rounds 3]
        [--connections 32] [--threads 2] [--postgres ADMIN_URL]

Fills a fresh database (SQLite by default; a fresh PostgreSQL database with --postgres) with
`registrar demo`, registers a read-only service account, then for each configuration starts a real
`registrar serve --no-worker` (one uvicorn process) and drives GET /api/academic/enrollments/{id}
with wrk (a Lua script sets the bearer token and rotates over 50 ids). Configurations alternate
round by round so that drift in the machine hits all of them alike; the figure is the median.

- baseline: metrics off, rate limit off, access log off (log level WARNING)
- metrics+ratelimit: Prometheus request metrics on, rate limit on (limit too high to trigger)
- all on: the above plus one JSON access-log line per request (to /dev/null)

Target: under 5% fewer requests/s than the baseline for metrics+ratelimit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_seconds, fresh_database, registrar, serve, service_account, token, wrk

CONFIGS: dict[str, dict[str, str]] = {
    "baseline": {
        "REGISTRAR_METRICS_ENABLED": "false",
        "REGISTRAR_RATE_LIMIT_PER_MINUTE": "0",
        "REGISTRAR_LOG_LEVEL": "WARNING",
    },
    "metrics+ratelimit": {
        "REGISTRAR_METRICS_ENABLED": "true",
        "REGISTRAR_RATE_LIMIT_PER_MINUTE": "1000000000",
        "REGISTRAR_RATE_LIMIT_BATCH": os.environ.get("REGISTRAR_RATE_LIMIT_BATCH", "1"),
        "REGISTRAR_LOG_LEVEL": "WARNING",
    },
    "all on (+JSON access log)": {
        "REGISTRAR_METRICS_ENABLED": "true",
        "REGISTRAR_RATE_LIMIT_PER_MINUTE": "1000000000",
        "REGISTRAR_LOG_LEVEL": "INFO",
        "REGISTRAR_LOG_JSON": "true",
    },
}


def get_json(url: str, jwt: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {jwt}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def measure(base: str, paths: list[str], jwt: str, args: argparse.Namespace) -> dict[str, float]:
    """wrk over `paths` (every answer must be 2xx): requests/s and requests sent."""
    figures = wrk(
        base, paths, jwt, seconds=args.seconds, connections=args.connections, threads=args.threads
    )
    if figures["non2xx"]:
        raise SystemExit(f"wrk saw {figures['non2xx']:.0f} answers that were not 2xx")
    return figures


def middleware_micro(iterations: int = 20_000) -> dict[str, float]:
    """CPU microseconds per request of the operational middleware around a no-op app, in process.

    Load on the machine barely moves this (CPU time, one thread, no I/O), so it is the stable
    figure; the wrk runs show the same cost end to end.
    """
    import asyncio
    import logging
    from types import SimpleNamespace

    from registrar.auth.client import Client
    from registrar.core.settings import Settings
    from registrar.http.middleware.body_limit import BodySizeLimit
    from registrar.http.middleware.errors import UnhandledErrors
    from registrar.http.middleware.observability import RequestObservability
    from registrar.http.middleware.rate_limit import MemoryCounter, RateLimit
    from registrar.http.middleware.security_headers import SecurityHeaders
    from registrar.observability.logs import configure_logging

    token = b"bench.token.value"
    # The caller as the keyring would know it after the first request: an already verified token.
    caller = Client(sub="bench-overhead", name="", email="", scopes=frozenset(), claims={})
    keyring = SimpleNamespace(verified={token.decode(): (caller, time.time() + 3600)})
    bench_settings = Settings(database_url="sqlite://", token_leeway_seconds=0)
    fake_app = SimpleNamespace(
        state=SimpleNamespace(runtime=SimpleNamespace(keyring=keyring, settings=bench_settings))
    )

    async def noop(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send(
            {
                "type": "http.response.start",
                "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    def stack(metrics: bool, limit: bool) -> object:
        inner: object = noop
        if limit:
            inner = RateLimit(inner, limit=10**9, counter=MemoryCounter())  # type: ignore[arg-type]
        inner = BodySizeLimit(inner, max_bytes=1 << 20, body_timeout=10)  # type: ignore[arg-type]
        inner = UnhandledErrors(SecurityHeaders(inner))  # type: ignore[arg-type]
        return RequestObservability(inner, metrics=metrics)  # type: ignore[arg-type]

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: object) -> None:
        return None

    async def run(app: object) -> float:
        scope_base = {
            "type": "http",
            "method": "GET",
            "path": "/api/academic/enrollments/x",
            "headers": [(b"host", b"bench"), (b"authorization", b"Bearer " + token)],
            "app": fake_app,
        }
        for _ in range(1000):  # warm up
            await app(dict(scope_base), receive, send)  # type: ignore[operator]
        started = time.process_time()
        for _ in range(iterations):
            await app(dict(scope_base), receive, send)  # type: ignore[operator]
        return (time.process_time() - started) / iterations * 1e6

    out: dict[str, float] = {}
    with open(os.devnull, "w") as devnull:
        quiet = Settings(database_url="sqlite://", log_level="WARNING", log_json=True)
        loud = Settings(database_url="sqlite://", log_level="INFO", log_json=True)
        configure_logging(quiet)
        out["no middleware"] = asyncio.run(run(noop))
        out["baseline"] = asyncio.run(run(stack(False, False)))
        out["metrics+ratelimit"] = asyncio.run(run(stack(True, True)))
        configure_logging(loud)
        for handler in logging.getLogger("registrar").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        out["all on (+JSON access log)"] = asyncio.run(run(stack(True, True)))
    return out


def shared_counter_micro(url: str, iterations: int = 3000) -> dict[int, tuple[float, float]]:
    """PostgreSQL rate-limit counter: (wall us, client CPU us) per hit, exact and batched."""
    import asyncio

    from registrar.http.middleware.rate_limit import DatabaseCounter

    async def run(batch: int) -> tuple[float, float]:
        counter = DatabaseCounter(url, 4, limit=10**9, batch=batch)
        window = int(time.time() // 60)
        try:
            for _ in range(200):
                await counter.hit("bench-micro", window)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(iterations):
                await counter.hit("bench-micro", window)
            return (
                (time.perf_counter() - wall) / iterations * 1e6,
                (time.process_time() - cpu) / iterations * 1e6,
            )
        finally:
            await counter.close()

    return {batch: asyncio.run(run(batch)) for batch in (1, 20)}


def rounds(
    args: argparse.Namespace, url: str
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[int, tuple[float, float]]]:
    """Fill `url`, then the wrk rounds: req/s and server CPU per request, per configuration."""
    env = {**os.environ, "REGISTRAR_DATABASE_URL": url, "REGISTRAR_RUN_WORKER": "false"}
    registrar("demo", "--enrollments", str(args.enrollments), env=env)
    counter_cost: dict[int, tuple[float, float]] = {}
    if args.postgres:
        print("PostgreSQL shared rate-limit counter, per request:")
        counter_cost = shared_counter_micro(url)
        for batch, (wall, cpu_us) in counter_cost.items():
            mode = "exact (every request)" if batch == 1 else f"batched (every {batch})"
            print(f"  {mode:28s} {wall:8.1f} us wall {cpu_us:8.1f} us client CPU")
    key = service_account(env, "bench-overhead", "api:academic:enrollments:read")
    with serve({**env, **CONFIGS["baseline"]}, "--no-worker") as (_proc, base):
        jwt = token(base, key)
        page = get_json(f"{base}/api/academic/enrollments?pagesize=50", jwt)
    assert isinstance(page, list)
    paths = [f"/api/academic/enrollments/{row['id']}" for row in page]
    if not paths:
        raise SystemExit("no enrollments to read")

    figures: dict[str, list[float]] = {name: [] for name in CONFIGS}
    cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for round_no in range(1, args.rounds + 1):
        for name, overrides in CONFIGS.items():
            with serve({**env, **overrides}, "--no-worker") as (proc, base):
                # Warm up: connections, prepared statements, the token cache.
                wrk(base, paths, jwt, seconds=2, connections=args.connections)
                before = cpu_seconds(proc.pid)
                run = measure(base, paths, jwt, args)
                per_request = (cpu_seconds(proc.pid) - before) / run["requests"] * 1e6
            figures[name].append(run["rps"])
            cpu[name].append(per_request)
            print(
                f"round {round_no}: {name:28s} {run['rps']:10.1f} req/s "
                f"{per_request:8.1f} CPU us/request",
                flush=True,
            )
    return figures, cpu, counter_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--postgres", help="admin URL: bench on a fresh PostgreSQL database")
    parser.add_argument("--micro-only", action="store_true", help="skip the wrk runs")
    args = parser.parse_args()

    micro = middleware_micro()
    print("middleware CPU per request, in process (no-op app):")
    for name, value in micro.items():
        print(f"  {name:28s} {value:8.1f} us")
    if args.micro_only:
        return

    with tempfile.TemporaryDirectory() as tmp_name:
        url, drop = fresh_database(Path(tmp_name), args.postgres)
        try:
            figures, cpu, counter_cost = rounds(args, url)
        finally:
            drop()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    base = statistics.median(figures["baseline"])
    base_cpu = statistics.median(cpu["baseline"])
    print(
        f"\nGET-by-id, {backend}, {args.enrollments} enrollments, one uvicorn process, "
        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, median of {args.rounds}:"
    )
    added = micro["metrics+ratelimit"] - micro["baseline"]
    print(
        f"  metrics+ratelimit add {added:.1f} us of CPU per request in process: "
        f"{added / base_cpu * 100:.1f}% of a GET-by-id's {base_cpu:.0f} us"
    )
    for batch, (_wall, cpu_us) in counter_cost.items():
        mode = "exact" if batch == 1 else f"batched every {batch}"
        print(
            f"  + PostgreSQL counter ({mode}): {cpu_us:.1f} us more, so "
            f"{(added + cpu_us) / base_cpu * 100:.1f}% in all"
        )
    # Server CPU per request is the figure to judge: a CPU-bound process serves 1/cpu requests
    # per second, and, unlike wall-clock req/s, it does not swing with other load on the machine.
    for name, values in figures.items():
        median = statistics.median(values)
        cpu_median = statistics.median(cpu[name])
        rps_delta = (base - median) / base * 100
        cpu_delta = (cpu_median - base_cpu) / base_cpu * 100
        note = (
            ""
            if name == "baseline"
            else (f"  capacity overhead {cpu_delta:+.1f}% (CPU/request), req/s {-rps_delta:+.1f}%")
        )
        print(f"  {name:28s} {median:10.1f} req/s {cpu_median:8.1f} CPU us/request{note}")


if __name__ == "__main__":
    main()
