"""Time SIS refreshes (`registrar load --replace`) of a generated extract, with the API in use.

    .venv/bin/python bench/refresh_bench.py [--lines 1000000] [--changed 0.01] [--postgres URL]
        [--no-sqlite] [--no-serve]

Writes an N-line extract with the demo generator, and a copy in which a fraction of the records
changed (`final_grade` and `is_active`). On a fresh database (SQLite, and PostgreSQL with
--postgres), runs the real `registrar load` command in a child process: a first load, then a
refresh with the same file (nothing changed), then a refresh with the changed one, each with
`--replace` as a scheduled refresh does. Prints seconds, the child's CPU and peak RSS.

During the changed refresh a `registrar serve` (with its worker) answers a GET by id loop on one
keep-alive connection; the bench prints those GETs' p50/p99 while the refresh ran, and sends a
PATCH every 0.5 s into it: their status codes, how long each waited for its answer (p50, max),
and when the last of their tasks had completed, relative to the refresh's end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, fresh_database, pct, registrar, serve, service_account, token

from registrar.sis.demo import generate

SCOPES = (
    "api:academic:enrollments:read api:academic:enrollments:read.sensitive "
    "api:academic:enrollments:write urn:dartmouth:people:private"
)


def write_extracts(
    base: Path, changed: Path, lines: int, seed: int, fraction: float
) -> tuple[list[str], int]:
    """The extract and its changed copy; a sample of ids, and how many records changed."""
    step = max(1, round(1 / fraction)) if fraction > 0 else 0
    ids: list[str] = []
    altered = 0
    with base.open("wb") as out, changed.open("wb") as alt:
        first: list[bytes] = []
        second: list[bytes] = []
        for n, record in enumerate(generate(lines, seed)):
            raw = orjson.dumps(record)
            first.append(raw)
            if step and n % step == step // 2:
                record = {**record, "is_active": not record["is_active"]}
                if "final_grade" in record:
                    record["final_grade"] = "B-" if record.get("final_grade") != "B-" else "C"
                raw = orjson.dumps(record)
                altered += 1
            second.append(raw)
            if n % 997 == 0 and len(ids) < 2000:
                ids.append(record["id"])
            if len(first) >= 10_000:
                out.write(b"\n".join(first) + b"\n")
                alt.write(b"\n".join(second) + b"\n")
                first.clear()
                second.clear()
        if first:
            out.write(b"\n".join(first) + b"\n")
            alt.write(b"\n".join(second) + b"\n")
    return ids, altered


def run_load(env: dict[str, str], extract: Path, *args: str) -> tuple[float, float, int, str]:
    """(seconds, CPU seconds, peak RSS KiB, stdout) of one `registrar load` child: its own
    rusage (wait4), not the running maximum over every child."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command("load", str(extract), *args),
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out_chunks.append(proc.stdout.read())),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err_chunks.append(proc.stderr.read())),  # type: ignore[union-attr]
    ]
    for reader in readers:
        reader.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"load failed: {b''.join(err_chunks).decode().strip()[-500:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, b"".join(out_chunks).decode()


def report(label: str, figures: tuple[float, float, int, str]) -> None:
    seconds, cpu, rss, out = figures
    print(f"  {label}: {seconds:.1f} s, CPU {cpu:.1f} s, peak RSS {rss / 1024:.0f} MiB")
    print("      " + out.strip().replace("\n", "\n      "))


class Reader(threading.Thread):
    """GET by id in a loop on one keep-alive connection; (start time, latency ms) of each."""

    def __init__(self, base: str, jwt: str, ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.base, self.jwt, self.ids = base, jwt, ids
        self.samples: list[tuple[float, float]] = []
        self.failures = 0
        self.done = threading.Event()

    def run(self) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Authorization": f"Bearer {self.jwt}"}
        rng = random.Random(1)
        while not self.done.is_set():
            path = "/api/academic/enrollments/" + rng.choice(self.ids)
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                self.failures += 1
            self.samples.append((start, (time.perf_counter() - start) * 1000))
            time.sleep(0.005)  # about 150 reads a second: a steady reader, not a load test
        conn.close()


def request(base: str, method: str, path: str, jwt: str, body: object = None) -> tuple[int, dict]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Authorization": f"Bearer {jwt}", "Content-Type": "application/json"}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = response.read()
    location = response.getheader("Location") or ""
    conn.close()
    parsed = json.loads(data) if data else {}
    if location:
        parsed["_location"] = location
    return response.status, parsed


def refresh_under_use(
    env: dict[str, str], extract: Path, ids: list[str]
) -> tuple[float, float, int, str]:
    with serve(env) as (_proc, base):
        key = service_account(env, f"bench-{os.getpid()}-{time.time_ns()}", SCOPES)
        jwt = token(base, key)
        reader = Reader(base, jwt, ids)
        reader.start()
        time.sleep(2)  # warm up: the read cache and connections
        started = time.perf_counter()
        result: list[tuple[float, float, int, str]] = []
        loader = threading.Thread(target=lambda: result.append(run_load(env, extract, "--replace")))
        loader.start()
        # A PATCH every 0.5 s for as long as the refresh runs (on SQLite its parse phase takes
        # no write lock, its applying phase does): how long each waited for its 202.
        answers: list[tuple[int, float, str]] = []
        n = 0
        while loader.is_alive():
            time.sleep(0.5)
            if not loader.is_alive():
                break
            patched = ids[(len(ids) // 2 + n) % len(ids)]
            n += 1
            sent = time.perf_counter()
            status, body = request(
                base,
                "PATCH",
                "/api/academic/enrollments/" + patched,
                jwt,
                {
                    "course_assessment": {
                        "submit_date": f"2024-05-01T00:00:{n % 60:02d}Z",
                        "opt_out_date": None,
                    }
                },
            )
            answers.append((status, time.perf_counter() - sent, body.get("_location", "")))
        loader.join()
        ended = time.perf_counter()
        completed_at = None
        pending = [location for status, _s, location in answers if status == 202]
        while pending and time.perf_counter() - ended < 60:
            _s, task = request(base, "GET", pending[-1], jwt)
            if task.get("status") != "accepted":
                pending.pop()
                if not pending:
                    completed_at = time.perf_counter()
            else:
                time.sleep(0.02)
        reader.done.set()
        reader.join()
    during = [ms for at, ms in reader.samples if started <= at <= ended]
    if during:
        print(
            f"  GET by id during the refresh: {len(during)} requests, "
            f"p50 {pct(during, 50):.1f} ms, "
            f"p99 {pct(during, 99):.1f} ms, max {max(during):.1f} ms, "
            f"{reader.failures} not 200"
        )
    waits = [seconds * 1000 for _status, seconds, _location in answers]
    statuses = sorted({status for status, _s, _l in answers})
    after = "never" if completed_at is None else f"{completed_at - ended:+.2f} s"
    if waits:
        print(
            f"  PATCH every 0.5 s during the refresh: {len(waits)} sent, status {statuses}, "
            f"answered in p50 {pct(waits, 50):.0f} ms, max {max(waits):.0f} ms; "
            f"all their tasks done by {after} after the refresh ended"
        )
    return result[0]


def bench(url: str, label: str, base: Path, changed: Path, ids: list[str], use: bool) -> None:
    env = {"REGISTRAR_DATABASE_URL": url}
    registrar("migrate", env=env)
    print(f"{label}:")
    report("first load", run_load(env, base))
    report("refresh, nothing changed", run_load(env, base, "--replace"))
    if use:
        report("refresh, records changed", refresh_under_use(env, changed, ids))
    else:
        report("refresh, records changed", run_load(env, changed, "--replace"))
    report("refresh back, records changed", run_load(env, base, "--replace"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01, help="fraction of records changed")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--postgres", help="admin URL, e.g. postgresql://postgres@127.0.0.1/postgres"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-serve", action="store_true", help="no API during the refresh")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="registrar-refresh-"))
    base, changed = workdir / "extract.jsonl", workdir / "changed.jsonl"
    started = time.perf_counter()
    ids, altered = write_extracts(base, changed, args.lines, args.seed, args.changed)
    print(
        f"extract: {args.lines:,} lines ({base.stat().st_size / 2**20:.0f} MiB), {altered:,} "
        f"changed in the copy; written in {time.perf_counter() - started:.1f} s"
    )
    try:
        if not args.no_sqlite:
            url, _drop = fresh_database(workdir)
            bench(url, "SQLite", base, changed, ids, not args.no_serve)
        if args.postgres:
            url, drop = fresh_database(workdir, args.postgres)
            try:
                bench(url, "PostgreSQL", base, changed, ids, not args.no_serve)
            finally:
                drop()
    finally:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
