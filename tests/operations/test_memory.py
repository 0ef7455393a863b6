"""Issue 9 item 7, from outside: requests with distinct filter shapes must not grow a live API
process without bound. About 700 of them took one from 104 MB to 1.4-1.55 GB, never returned: every
shape left a compiled statement in SQLAlchemy's cache and a prepared statement in each of the
driver's connections, each cache bounded by a count of entries whatever their size.

The shapes here are what any read token may send within the filter limits: 48 single-term filters
on text attributes, each an equality or a `!` (one of 2^48 shapes per request). Measured on
SQLite, 400 of them: +157 MB before the caches were bounded by size (db/statement_cache.py),
+54 MB after, most of it allocator arenas that stay with the process. The bound below sits
between the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registrar.auth.scopes import ENROLLMENTS_READ
from tests.support.accounts import create_account
from tests.support.databases import make_settings
from tests.support.seeding import seed_known_enrollments
from tests.support.servers import Proc, free_port, login, serve

URL = "/api/academic/enrollments"
TEXT_FIELDS = [
    "netid",
    "role",
    "school_id",
    "section.id",
    "term.id",
    "id",
    "section.lms_section_id",
    "term.sis_term_code",
]
WIDTH = 48
SHAPES = 400
GROWTH_MB = 100


def shape(n: int) -> list[tuple[str, str]]:
    """The filters of shape `n`: bit j of n makes the j-th an inequality."""
    return [
        (TEXT_FIELDS[j % len(TEXT_FIELDS)], ("!" if (n >> j) & 1 else "") + f"v{j}")
        for j in range(WIDTH)
    ]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[tuple[Proc, str, dict[str, str]]]:
    port = free_port()
    proc = serve(database_url, port, "--no-worker")
    try:
        seed_known_enrollments(make_settings(database_url))
        base = f"http://127.0.0.1:{port}"
        yield proc, base, login(base, create_account(database_url, "shapes", [ENROLLMENTS_READ]))
    finally:
        proc.ensure_dead()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_distinct_filter_shapes_do_not_grow_the_process_without_bound(
    server: tuple[Proc, str, dict[str, str]],
) -> None:
    proc, base, headers = server
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        # Warm up on shapes of their own: what the first requests allocate once is not growth.
        for n in range(40):
            assert client.get(URL, params=shape(n | 1 << (WIDTH - 1))).status_code == 200
        before = rss_mb(proc.proc.pid)
        for i in range(SHAPES):
            # Spread over the 2^48 shapes (Knuth's multiplicative hash): each one new.
            response = client.get(URL, params=shape(i * 2654435761 % 2 ** (WIDTH - 1)))
            assert response.status_code == 200, response.text
        grown = rss_mb(proc.proc.pid) - before
    assert grown < GROWTH_MB, f"{SHAPES} distinct filter shapes grew the API process {grown:.0f} MB"
