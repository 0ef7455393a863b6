"""Waiting on a task: how soon after its commit does a waiting client hear of it, and what do
a thousand waiting clients cost?

    .venv/bin/python bench/wait_bench.py [--samples 200] [--idle 1000] [--postgres URL]

Latency. A fresh database with 200 enrollments and `registrar serve`, its worker in the API
process (the default) and then in a process of its own (`serve --no-worker` + `registrar worker`:
the wake-up crosses processes, by LISTEN/NOTIFY on PostgreSQL and the WAL-index watcher on
SQLite). Per deployment, --samples sequential PATCHes of course_assessment, each waited on:
  * `poll`: PATCH (202), then at once GET /api/tasks/{id}?wait=10 on a second connection;
  * `prefer`: PATCH with `Prefer: wait=10`, answered 200 with the finished task.
The latency is from the task's `completed_date` (stamped by the worker in the transaction that
finishes it, so at or before its commit: the figure errs high by the rest of the batch and the
COMMIT) to the client having read the answer (time.time(); the same machine's clock). For
`poll`, how many polls were already open when the task completed is printed too (the others
found it done and measure the client's own delay).

Idle cost. `serve --no-worker` (nothing completes the tasks), --idle tasks queued, then --idle
GET /api/tasks/{id}?wait=60 opened at once (raw sockets, one each) and the API process's CPU
(user+system, /proc) read over 10 s while they wait; then the same with --idle
GET /api/events?wait=30 long-polls; and the process idle with none open, for comparison.

Run it under /work/notes/bin/cpu-exclusive.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    command,
    cpu_seconds,
    fresh_database,
    pct,
    registrar,
    seed_enrollments,
    serve,
    service_account,
    stop,
    token,
)

SCOPES = "api:academic:enrollments:read api:academic:enrollments:write"
WINDOW = float(
    os.environ.get("WAIT_BENCH_WINDOW", "10")
)  # seconds of CPU measured with the polls open


def body(k: int) -> bytes:
    return json.dumps(
        {
            "course_assessment": {
                "submit_date": f"2020-03-05T17:{k // 60 % 60:02d}:{k % 60:02d}Z",
                "opt_out_date": None,
            }
        }
    ).encode()


def completed_at(task: dict[str, object]) -> float:
    stamp = str(task["completed_date"]).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(stamp).timestamp()


class Client:
    """One keep-alive connection."""

    def __init__(self, base: str, jwt: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.auth = f"Bearer {jwt}"

    def call(
        self, method: str, path: str, payload: bytes | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        sent = {"Authorization": self.auth, **{k.replace("_", "-"): v for k, v in headers.items()}}
        if payload is not None:
            sent["Content-Type"] = "application/json"
        self.conn.request(method, path, body=payload, headers=sent)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def latencies(base: str, jwt: str, ids: list[str], samples: int) -> dict[str, object]:
    writer, poller = Client(base, jwt), Client(base, jwt)
    poll: list[float] = []
    prefer: list[float] = []
    waited = 0
    for k in range(samples):
        # poll: the 202, then the long-poll
        path = f"/api/academic/enrollments/{ids[k % len(ids)]}"
        status, headers, data = writer.call("PATCH", path, body(2 * k))
        if status != 202:
            raise SystemExit(f"PATCH answered {status}: {data[:300]!r}")
        asked = time.time()
        status, _h, data = poller.call("GET", f"{headers['location']}?wait=10")
        answered = time.time()
        task = json.loads(data)
        if status != 200 or task["status"] == "accepted":
            raise SystemExit(f"GET ?wait answered {status}: {data[:300]!r}")
        done = completed_at(task)
        waited += asked < done
        poll.append((answered - done) * 1000)
        # prefer: one request
        status, _h, data = writer.call("PATCH", path, body(2 * k + 1), Prefer="wait=10")
        answered = time.time()
        if status != 200:
            raise SystemExit(f"PATCH with Prefer: wait answered {status}: {data[:300]!r}")
        prefer.append((answered - completed_at(json.loads(data))) * 1000)
        time.sleep(0.01)  # the worker idle again, as a lone write finds it
    return {"poll": poll, "prefer": prefer, "waited": waited}


async def open_polls(base: str, jwt: str, paths: list[str]) -> list[asyncio.StreamWriter]:
    """Send one GET per path on a connection of its own; the writers (their answers unread)."""
    host, port = base.removeprefix("http://").split(":")
    writers = []
    for path in paths:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {jwt}\r\n\r\n".encode()
        )
        writers.append(writer)
        writer.reader = reader  # type: ignore[attr-defined]
    for writer in writers:
        await writer.drain()
    return writers


async def idle_cpu(pid: int, base: str, jwt: str, paths: list[str]) -> tuple[float, int]:
    """The API process's CPU (% of a core) over WINDOW seconds with a long-poll open per path;
    how many of them were still open at the end."""
    writers = await open_polls(base, jwt, paths)
    # Until every poll has been read and made its first query (a thousand of them take a few
    # seconds of the process's CPU): half a second with under 1% of a core, at most 30 s.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if cpu_seconds(pid) - before < 0.005:
            break
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(WINDOW)
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
    still = sum(1 for w in writers if not w.reader.at_eof() and not w.reader._buffer)  # type: ignore[attr-defined]
    for writer in writers:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    return cpu, still


def feed_head(base: str, jwt: str) -> str:
    """The cursor after the newest task.completed event (read the feed to its end)."""
    client = Client(base, jwt)
    path = "/api/events?pagesize=1000&type=task.completed"
    while True:
        status, headers, data = client.call("GET", path)
        if status != 200:
            raise SystemExit(f"GET /api/events answered {status}: {data[:300]!r}")
        cursor = headers["x-next-cursor"]
        if not json.loads(data):
            return cursor
        path = f"/api/events?pagesize=1000&type=task.completed&after={cursor}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (default: SQLite)")
    args = parser.parse_args()
    name = "postgresql" if args.postgres else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = fresh_database(Path(tmp), args.postgres)
        env = {"REGISTRAR_DATABASE_URL": url, "REGISTRAR_LOG_LEVEL": "WARNING"}
        try:
            registrar("migrate", env=env)
            ids = seed_enrollments(url, 200)
            key = service_account(env, "bench-wait", SCOPES)
            for deployment in ("worker in the API process", "worker in its own process"):
                extra = () if deployment.endswith("API process") else ("--no-worker",)
                with serve(env, *extra) as (_proc, base):
                    worker = None
                    if extra:
                        worker = subprocess.Popen(command("worker"), env={**os.environ, **env})
                        time.sleep(3)  # started, listening
                    try:
                        jwt = token(base, key)
                        latencies(base, jwt, ids, 10)  # warm up
                        got = latencies(base, jwt, ids, args.samples)
                    finally:
                        if worker is not None:
                            stop(worker)
                for mode in ("poll", "prefer"):
                    values = got[mode]
                    assert isinstance(values, list)
                    print(
                        f"{name}, {deployment}, {mode}: {len(values)} samples, from the task's "
                        f"completion stamp to the client's answer: p50 {pct(values, 50):.1f} ms, "
                        f"p99 {pct(values, 99):.1f} ms, max {max(values):.1f} ms"
                        + (
                            f" ({got['waited']} polls open before it completed)"
                            if mode == "poll"
                            else ""
                        ),
                        flush=True,
                    )
            with serve(env, "--no-worker") as (proc, base):
                jwt = token(base, key)
                tasks = asyncio.run(queue(base, jwt, ids, args.idle))
                cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(WINDOW)
                idle = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0) * 100
                print(f"{name}: API process idle, no poll open: {idle:.2f}% of a core", flush=True)
                paths = [f"/api/tasks/{t}?wait=60" for t in tasks]
                cpu, still = asyncio.run(idle_cpu(proc.pid, base, jwt, paths))
                print(
                    f"{name}: {len(paths)} GET /api/tasks/{{id}}?wait=60 open ({still} still "
                    f"waiting at the end): API process {cpu:.2f}% of a core over {WINDOW:g} s",
                    flush=True,
                )
                head = feed_head(base, jwt)
                paths = [f"/api/events?wait=30&type=task.completed&after={head}"] * args.idle
                cpu, still = asyncio.run(idle_cpu(proc.pid, base, jwt, paths))
                print(
                    f"{name}: {len(paths)} GET /api/events?wait=30 open ({still} still waiting "
                    f"at the end): API process {cpu:.2f}% of a core over {WINDOW:g} s",
                    flush=True,
                )
        finally:
            drop()


async def queue(base: str, jwt: str, ids: list[str], n: int) -> list[str]:
    """Queue n PATCHes (32 at a time); their task ids (none runs: no worker)."""
    import httpx

    gate = asyncio.Semaphore(32)
    headers = {"Authorization": f"Bearer {jwt}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:

        async def one(k: int) -> str:
            async with gate:
                r = await c.patch(f"/api/academic/enrollments/{ids[k % len(ids)]}", content=body(k))
            if r.status_code != 202:
                raise SystemExit(f"PATCH answered {r.status_code}: {r.text[:300]}")
            return r.headers["Location"].rsplit("/", 1)[1]

        return list(await asyncio.gather(*(one(k) for k in range(n))))


if __name__ == "__main__":
    main()
