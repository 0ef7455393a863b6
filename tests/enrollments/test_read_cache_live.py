"""The read cache on a real server, with another process opening and closing connections to the
same database all along (as `registrar load`, a worker or an operator's sqlite3 would): the server
keeps answering, and every answer is fresh. (The cache once closed a descriptor of SQLite's -shm
file, which silently dropped this process's locks on it; the other process then re-initialised
the file under the server's mapping: SIGBUS.)"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from registrar.auth.scopes import ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, ENROLLMENTS_WRITE
from tests.support.accounts import cli
from tests.support.databases import backend, make_settings
from tests.support.seeding import seed_enrollments
from tests.support.servers import free_port, login, serve
from tests.support.tasks import patch_body as body

pytestmark = pytest.mark.skipif(backend() != "sqlite", reason="the read cache is SQLite's")

POLLER = """
import sqlite3, sys, time
path = sys.argv[1]
while True:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.execute("SELECT count(*) FROM tasks WHERE status = 'accepted'").fetchone()
    connection.close()
    time.sleep(0.005)
"""


@pytest.fixture(scope="module")
def prepared(database_url: str) -> Iterator[tuple[str, list[str]]]:
    code, _out, err = cli(database_url, "migrate")
    assert code == 0, err
    scopes = f"{ENROLLMENTS_READ} {ENROLLMENTS_READ_SENSITIVE} {ENROLLMENTS_WRITE}"
    code, out, err = cli(
        database_url,
        *("clients", "create", "--sub", "svc-cache", "--name", "cache"),
        *("--email", "c@example.edu", "--scopes", scopes),
    )
    assert code == 0, err
    yield out.strip().splitlines()[-1], seed_enrollments(make_settings(database_url), 20)


def test_cached_reads_stay_fresh_beside_another_process(
    database_url: str, prepared: tuple[str, list[str]]
) -> None:
    key, ids = prepared
    port = free_port()
    server = serve(database_url, port)
    poller = subprocess.Popen(
        [sys.executable, "-c", POLLER, database_url.removeprefix("sqlite:///")]
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=login(base, key), timeout=10) as client:
            for round_ in range(12):
                eid = ids[round_ % len(ids)]
                for _ in range(5):  # cached after the first
                    assert client.get(f"/api/academic/enrollments/{eid}").status_code == 200
                date = f"2021-01-{round_ + 1:02d}T00:00:00Z"
                r = client.patch(f"/api/academic/enrollments/{eid}", json=body(date))
                assert r.status_code == 202, r.text
                deadline = time.monotonic() + 10
                while client.get(r.headers["location"]).json()["status"] == "accepted":
                    assert time.monotonic() < deadline, "task not done"
                    time.sleep(0.02)
                got = client.get(f"/api/academic/enrollments/{eid}").json()
                assert got["course_assessment"]["submit_date"] == date
                assert server.proc.poll() is None
            metrics = client.get("/metrics").text
        hits = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith('registrar_read_cache_lookups{result="hit"}')
        )
        assert hits >= 12 * 3  # the cache was in use, not bypassed
    finally:
        poller.kill()
        poller.wait(10)
        alive = server.proc.poll() is None
        server.ensure_dead()
    assert alive, f"the server died: exit {server.proc.returncode}"
