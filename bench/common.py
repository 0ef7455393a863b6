"""Everything the benches share: free ports, fresh databases, `registrar` as a command and as a
server, service accounts and tokens, seeded enrollments, wrk runs, CPU time and percentiles.

Every bench imports its plumbing from here (and nothing from tests/).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str], health: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(health)
        yield proc
    finally:
        stop(proc)


def command(*args: str) -> list[str]:
    """The `registrar` command line (the installed script, else `python -m registrar`)."""
    script = BIN / "registrar"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "registrar", *args]


def registrar(*args: str, env: dict[str, str]) -> str:
    """Run `registrar ARGS`; its stdout (its stderr's end, and exit 1, if it fails)."""
    out = subprocess.run(
        command(*args), env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"registrar {' '.join(args)} failed: {out.stderr.strip()[-500:]}")
    return out.stdout


@contextlib.contextmanager
def serve(
    env: dict[str, str], *extra: str, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`registrar serve` on a free port, until the block ends (SIGTERM): the process, its base
    URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        command("serve", "--port", str(port), *extra),
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"{base}/health")
        yield proc, base
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def service_account(env: dict[str, str], sub: str, scopes: str) -> str:
    """Register a service account with `registrar clients create`; its API key."""
    out = registrar(
        *("clients", "create", "--sub", sub, "--name", "bench"),
        *("--email", "bench@example.edu", "--scopes", scopes),
        env=env,
    )
    return out.strip().splitlines()[-1]


def token(base: str, api_key: str) -> str:
    req = urllib.request.Request(
        f"{base}/api/jwt", method="POST", headers={"Authorization": api_key}
    )
    with urllib.request.urlopen(req) as response:
        return str(json.load(response)["jwt"])


LUA_PATHS = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local i = 0
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


LUA_PATCH = """
local ids = {}
for line in io.lines("%(paths)s") do ids[#ids + 1] = line end
local i = 0
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local body = string.format(
    '{"course_assessment": {"submit_date": "2020-03-05T17:%%02d:%%02dZ", "opt_out_date": null}}',
    math.floor(i / 60) %% 60, i %% 60)
  return wrk.format("PATCH", "/api/academic/enrollments/" .. ids[(i %% #ids) + 1], nil, body)
end
"""


def wrk(
    base: str,
    paths: list[str],
    token: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    script: str = LUA_PATHS,
) -> dict[str, float]:
    """Run wrk over `paths` round-robin (GETs, or what `script` makes of each line); requests/s,
    requests sent, and latency percentiles in milliseconds."""
    with tempfile.TemporaryDirectory() as tmp:
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        script_file = Path(tmp) / "script.lua"
        script_file.write_text(script % {"paths": paths_file, "token": token})
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script_file),
                base,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    figures: dict[str, float] = {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    figures["rps"] = float(rps.group(1)) if rps else 0.0
    sent = re.search(r"(\d+) requests in", out)
    figures["requests"] = float(sent.group(1)) if sent else 0.0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            figures[f"p{pct}"] = float(m.group(1)) * UNITS[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def timed_paths(base: str, paths: list[str], token: str, n: int) -> list[float]:
    """Latencies (ms) of n sequential GETs cycling through `paths`: the figure at light load."""
    out: list[float] = []
    for i in range(n):
        out += timed_get(base + paths[i % len(paths)], token, 1)
    return out


def timed_get(url: str, token: str, n: int) -> list[float]:
    """Latencies (ms) of n sequential GETs of one URL over one keep-alive connection."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + ("?" + parts.query if parts.query else "")
    return timed_requests(f"{parts.scheme}://{parts.netloc}", [path], token, n=n)


def timed_requests(
    base: str, paths: list[str], token: str, *, n: int = 0, seconds: float = 0.0
) -> list[float]:
    """Latencies (ms) of sequential GETs cycling through `paths` over one keep-alive connection:
    `n` of them, or as many as fit in `seconds`. Anything but 200 stops the bench."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    out: list[float] = []
    end = time.perf_counter() + seconds
    while (len(out) < n) if n else (time.perf_counter() < end):
        path = paths[len(out) % len(paths)]
        start = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        out.append((time.perf_counter() - start) * 1000)
    conn.close()
    return out


def pct(values: list[float], q: float) -> float:
    """The q-th percentile, nearest rank: the smallest value with at least q% of them at or below
    it (so p50 of 1..4 is 2, p99 of 300 samples the 297th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time of processes so far, all their threads (Linux /proc); a process
    that is gone counts 0. The figure that load elsewhere on the machine does not skew."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def postgres_pids() -> list[int]:
    """Every postgres process on this machine (the server's own and every backend)."""
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def children(pid: int) -> list[int]:
    """A process and its descendants (uvicorn --workers forks the API processes)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    pids = [pid]
    for child in out.split():
        pids += children(int(child))
    return pids


async def enqueue(base: str, jwt: str, ids: list[str], n: int) -> float:
    """Queue n PATCHes of course_assessment over HTTP (32 at a time), the k-th on enrollment
    ids[k % len(ids)]; the enqueue rate in requests/s."""
    import httpx

    headers = {"Authorization": f"Bearer {jwt}"}
    gate = asyncio.Semaphore(32)
    retries: list[int] = []
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as c:

        async def one(k: int) -> None:
            body = {
                "course_assessment": {
                    "submit_date": f"2020-03-05T17:{k // 60 % 60:02d}:{k % 60:02d}Z",
                    "opt_out_date": None,
                }
            }
            async with gate:
                # A connection dropped without an answer (seen under load) is retried; the
                # Idempotency-Key keeps that from queueing the task twice.
                for attempt in range(3):
                    try:
                        r = await c.patch(
                            f"/api/academic/enrollments/{ids[k % len(ids)]}",
                            json=body,
                            headers={"Idempotency-Key": f"bench-{k}"},
                        )
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                        retries.append(k)
                if r.status_code != 202:
                    raise RuntimeError(f"PATCH answered {r.status_code}: {r.text}")

        started = time.perf_counter()
        await asyncio.gather(*(one(k) for k in range(n)))
        if retries:
            print(f"  {len(retries)} PATCHes retried after a dropped connection", flush=True)
        return n / (time.perf_counter() - started)


async def backends(database: str, conn: object, kind: str = "client backend") -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend of `kind` serving `database` (/proc; the
    server must be on this machine), but the one asking on `conn` (an asyncpg connection).
    "client backend": the statements clients send (what pg_stat_statements would see, plus
    parsing and the protocol); "autovacuum worker": the vacuums and analyzes the writes cause."""
    rows = await conn.fetch(  # type: ignore[attr-defined]
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = $2"
        " AND pid <> pg_backend_pid()",
        database,
        kind,
    )
    return {int(r["pid"]): cpu_seconds(int(r["pid"])) for r in rows}


# --- databases -------------------------------------------------------------------------------


async def pg_execute(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_scalar(url: str, sql: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


def fresh_database(tmp: Path, postgres_admin: str | None = None) -> tuple[str, Callable[[], None]]:
    """A new, empty database: a SQLite file in `tmp`, or a database of its own on the PostgreSQL
    server `postgres_admin` names; and the function that drops it."""
    if not postgres_admin:
        return f"sqlite:///{tmp / f'bench-{secrets.token_hex(3)}.db'}", lambda: None
    from sqlalchemy.engine import make_url

    name = f"registrar_bench_{secrets.token_hex(4)}"
    asyncio.run(pg_execute(postgres_admin, f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        asyncio.run(pg_execute(postgres_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return url, drop


def seed_enrollments(database_url: str, n: int) -> list[str]:
    """n enrollments (one section, n students) straight into a migrated database; their ids."""
    import datetime as dt

    from sqlalchemy import Connection, insert

    from registrar.core.settings import Settings
    from registrar.db.engine import create_database
    from registrar.enrollments.models import Enrollment, Section, Term
    from registrar.people.models import Person

    tag = secrets.token_hex(3)
    section, term = f"BENCH.001.01-202001-U-{tag}", f"202001-{tag}"
    netids = [f"b{tag}{i:06d}" for i in range(n)]
    ids = [f"{section}-{netid}-student" for netid in netids]
    now = dt.datetime.now(dt.UTC)

    def seed(connection: Connection) -> None:
        connection.execute(insert(Term).values(id=term, sis_term_code="202001"))
        connection.execute(insert(Section).values(id=section))
        connection.execute(
            insert(Person), [{"netid": x, "confidential": False, "updated_at": now} for x in netids]
        )
        connection.execute(
            insert(Enrollment),
            [
                {
                    "id": eid,
                    "netid": netid,
                    "role": "student",
                    "school_id": "UG",
                    "section_id": section,
                    "term_id": term,
                    "is_active": True,
                    "is_in_session": True,
                    "cache_date": now,
                }
                for eid, netid in zip(ids, netids, strict=True)
            ],
        )

    async def run() -> None:
        db = create_database(Settings(database_url=database_url))
        try:
            await db.write(seed)
        finally:
            await db.dispose()

    asyncio.run(run())
    return ids
