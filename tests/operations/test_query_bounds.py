"""Issue 9 item 1, attacked from outside: one read-only token sent 50 values of 160 OR-ed wildcard
terms (`id=*q00*,...,*q158*,*`), 7.3 s of CPU each on 20,000 rows; eight of them stalled every
other read for over two minutes, even after their clients hung up.

Now: the limits answer 400 naming the limit; a query past its statement budget is stopped (400
`query-too-costly`); a query whose client hangs up is stopped (seen in /metrics, and on PostgreSQL
in pg_stat_activity); and a selective read is answered while wide ones fill the wide lane. The
tests that need an expensive query raise the limits so the issue's own attack gets through.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ
from tests.support.accounts import Accounts
from tests.support.databases import POSTGRES_ADMIN_URL, make_settings
from tests.support.seeding import seed_enrollments
from tests.support.servers import real_server

ENROLLMENTS = "/api/academic/enrollments"
# Twice the issue's table: the attack then runs about 45 s here (either database), so what the
# tests of an abandoned one wait for could not come from the attack ending by itself.
ROWS = 40_000
# The issue's attack: 160 terms per value, the last `*` forcing every other term to run.
ATTACK_VALUE = ",".join(f"*q{i:02d}*" for i in range(159)) + ",*"
ATTACK = ENROLLMENTS + "?" + urlencode([("id", ATTACK_VALUE)] * 50, safe="*,")
# Limits that let the attack through, for the tests of what stops it once it runs.
OPEN_LIMITS = {
    "filter_wildcards_per_value": 1000,
    "filter_wildcards_per_request": 100_000,
    "filter_terms_per_request": 100_000,
    "query_string_max_bytes": 1_000_000,
}


@pytest.fixture(scope="module")
def netids(database_url: str, api: TestClient) -> list[str]:
    ids = seed_enrollments(make_settings(database_url), ROWS)
    return [i.split("-")[-2] for i in ids]


@pytest.fixture(scope="module")
def reader(accounts: Accounts) -> dict[str, str]:
    """A read-only token, as the attacker had."""
    return accounts.headers([ENROLLMENTS_READ], sub="svc-attacker")


def _problem(response: httpx.Response, slug: str) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    body = response.json()
    assert body["type"].endswith("/" + slug), body
    return list(body["errors"])


def _wildcards(n_values: int, stars_each: int) -> list[tuple[str, str]]:
    return [("id", "*" + "a*" * (stars_each - 1))] * n_values


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (_wildcards(1, 5), "id: at most 4 wildcards (*) per value"),
        ([("id", "*a*,*b*,*c*")], "id: at most 4 wildcards (*) per value"),
        (_wildcards(3, 3), "at most 8 wildcards (*) per request"),
        ([("netid", ",".join("n" * 400))] * 3, "at most 1000 filter terms "),
    ],
)
def test_limits_answer_400_naming_the_limit(
    api: TestClient, reader: dict[str, str], params: list[tuple[str, str]], error: str
) -> None:
    response = api.get(ENROLLMENTS, params=params, headers=reader)
    assert response.status_code == 400
    errors = _problem(response, "invalid-request")
    assert len(errors) == 1 and errors[0].startswith(error), errors


def test_the_issues_attack_is_refused_at_once(api: TestClient, reader: dict[str, str]) -> None:
    assert len(ATTACK) > 50_000
    response = api.get(ATTACK, headers=reader)
    assert response.status_code == 400
    assert _problem(response, "invalid-request") == [
        "query string: at most 16384 bytes (query_string_max_bytes)"
    ]


def test_within_the_limits_is_answered(
    api: TestClient, reader: dict[str, str], netids: list[str]
) -> None:
    # 4 wildcards in a value, 8 in the request; escaped `\*` is a literal star, not counted.
    params = [("id", "*0001*,*x*"), ("netid", "*0*,*1*"), ("id", "\\*\\*\\*,x")]
    response = api.get(ENROLLMENTS, params=params, headers=reader)
    assert response.status_code == 200, response.text


def test_the_openapi_document_states_the_limits(api: TestClient) -> None:
    operation = api.get("/openapi.json").json()["paths"][ENROLLMENTS]["get"]
    netid = next(p for p in operation["parameters"] if p["name"] == "netid")
    assert "at most 4 `*` per value and 8 per request" in netid["description"]
    assert "1000 per request" in netid["description"]
    assert "16384 bytes" in netid["description"]
    assert "statement budget" in operation["responses"]["400"]["description"]


def test_a_query_past_its_budget_is_stopped(
    database_url: str, reader: dict[str, str], netids: list[str]
) -> None:
    settings = make_settings(database_url, statement_budget_ms=1, run_worker=False, **OPEN_LIMITS)
    with TestClient(create_app(settings)) as app:
        response = app.get(ATTACK, headers=reader)
        assert response.status_code == 400, response.text
        assert _problem(response, "query-too-costly") == [
            "statement budget: 1 ms (statement_budget_ms)"
        ]
        assert _stopped(app.get("/metrics").text, "budget") >= 1
        # A selective read is not stopped: an equality on netid reads a few index entries.
        page = app.get(ENROLLMENTS, params={"netid": netids[7]}, headers=reader)
        assert page.status_code == 200 and len(page.json()) == 1


def _stopped(metrics: str, reason: str) -> float:
    found = re.search(rf'^registrar_reads_stopped{{reason="{reason}"}} (\S+)$', metrics, re.M)
    assert found, metrics
    return float(found.group(1))


def _gauge(metrics: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics, re.M)
    assert found, metrics
    return float(found.group(1))


@pytest.fixture
def open_server(database_url: str, netids: list[str]) -> Iterator[str]:
    """A live server that lets the attack through, with a budget far past its cost."""
    with real_server(
        database_url,
        statement_budget_ms=600_000,
        wide_reads_at_once=1,
        # Fewer selective readers than attacks: without lanes, the attacks would hold them all.
        db_pool_size=2,
        **OPEN_LIMITS,
    ) as port:
        yield f"http://127.0.0.1:{port}"


def _send_attack(base: str, headers: dict[str, str]) -> socket.socket:
    """The attack on a raw connection, left unread: the caller hangs up by closing it."""
    port = int(base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    request = (
        f"GET {ATTACK} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {headers['Authorization']}\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


def _wait(base: str, check: Callable[[str], bool], what: str, timeout: float = 120) -> str:
    """Poll /metrics until `check(text)`; the text. (A deadline, not a timing assertion: what
    it waits for cannot happen at all without the behaviour under test.)"""
    deadline = time.monotonic() + timeout
    while True:
        # A generous read timeout: on a loaded 2-core CI box a scrape beside four attacks took
        # longer than httpx's default 5 s once (the attacks' own CPU, not a starved reader).
        text = httpx.get(f"{base}/metrics", timeout=30).text
        if check(text):
            return str(text)
        assert time.monotonic() < deadline, f"never saw {what}:\n{text}"
        time.sleep(0.05)


def _attack_running(base: str) -> str:
    return _wait(base, lambda t: _gauge(t, "registrar_wide_reads_running") >= 1, "a wide read")


def test_a_query_whose_client_hangs_up_is_stopped(open_server: str, reader: dict[str, str]) -> None:
    base = open_server
    before = _stopped(httpx.get(f"{base}/metrics").text, "client_gone")
    sock = _send_attack(base, reader)
    try:
        _attack_running(base)
    finally:
        sock.close()
    # Only a statement that was running and then interrupted (or a queued one dropped) counts:
    # one that ran to its end would leave this figure as it was.
    text = _wait(base, lambda t: _stopped(t, "client_gone") > before, "the read stopped")
    assert _gauge(text, "registrar_wide_reads_running") == 0
    assert re.search(r'registrar_http_requests_total\{[^}]*status="499"[^}]*\} [1-9]', text), text
    if POSTGRES_ADMIN_URL:
        _wait_no_statement_running(base)


def _wait_no_statement_running(base: str) -> None:
    """PostgreSQL: the server itself stopped the statement (asyncpg's cancel request), long
    before the attack's own run (about 45 s on ROWS) could have ended it."""
    import asyncio

    import asyncpg

    async def running() -> int:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE '%LIKE%' AND pid <> pg_backend_pid()"
                )
            )
        finally:
            await conn.close()

    deadline = time.monotonic() + 10
    while asyncio.run(running()):
        assert time.monotonic() < deadline, "the abandoned statement still runs on the server"
        time.sleep(0.1)


def test_a_selective_read_is_answered_while_wide_ones_fill_their_lane(
    open_server: str, reader: dict[str, str], netids: list[str]
) -> None:
    base = open_server
    socks = [_send_attack(base, reader) for _ in range(4)]
    try:
        _attack_running(base)
        answers = []
        for netid in netids[:20]:
            response = httpx.get(f"{base}{ENROLLMENTS}", params={"netid": netid}, headers=reader)
            answers.append((response.status_code, [e["netid"] for e in response.json()]))
        # The wide lane was full the whole time: the selective reads did not wait for it.
        assert _gauge(httpx.get(f"{base}/metrics").text, "registrar_wide_reads_running") == 1
        assert answers == [(200, [n]) for n in netids[:20]]
    finally:
        for sock in socks:
            sock.close()
    _wait(base, lambda t: _gauge(t, "registrar_wide_reads_running") == 0, "the reads stopped")
