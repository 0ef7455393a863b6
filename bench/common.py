"""Shared benchmark plumbing: free ports, servers as subprocesses, wrk runs and their figures."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
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
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def registrar(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [str(BIN / "registrar"), *args],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


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
                "-t1",
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
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    path = parts.path + ("?" + parts.query if parts.query else "")
    out = []
    for _ in range(n):
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
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]
