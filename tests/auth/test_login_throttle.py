"""Failed logins per address: past REGISTRAR_LOGIN_FAILURES_PER_MINUTE failures in a minute, every
login from that address is 429 with Retry-After until the minute ends, a valid key included; only
failures count; X-Forwarded-For is believed only from REGISTRAR_TRUSTED_PROXIES; on PostgreSQL
every API process shares the count. Attacked over HTTP, as a guesser would."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ
from registrar.core.settings import Settings
from tests.support.accounts import Accounts
from tests.support.databases import POSTGRES_ADMIN_URL, make_settings
from tests.support.servers import real_server

LIMIT = 5


def _away_from_minute_edge() -> None:
    # The window is a fixed minute: a burst must not straddle two of them.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def _guess(client: TestClient | httpx.Client, **headers: str) -> httpx.Response:
    return client.post("/api/jwt", headers={"Authorization": "rk_guess", **headers})


@pytest.fixture(scope="module")
def key(accounts: Accounts) -> str:
    return accounts.key("svc-throttled", [ENROLLMENTS_READ])


def test_default_is_twenty_failures_a_minute() -> None:
    assert Settings().login_failures_per_minute == 20


def test_past_the_limit_every_login_from_the_address_is_429(database_url: str, key: str) -> None:
    settings = make_settings(database_url, login_failures_per_minute=LIMIT, run_worker=False)
    _away_from_minute_edge()
    with TestClient(create_app(settings)) as client:
        # Successes never count.
        for _ in range(3 * LIMIT):
            login = client.post("/api/jwt", headers={"Authorization": key})
            assert login.status_code == 200
        held = {"Authorization": f"Bearer {login.json()['jwt']}"}
        for _ in range(LIMIT):
            assert _guess(client).status_code == 401
        for attempt in (lambda: _guess(client), lambda: client.post(
            "/api/jwt", headers={"Authorization": key}
        )):  # fmt: skip
            refused = attempt()
            assert refused.status_code == 429, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert "failed logins" in refused.json()["detail"]
        # Only the login service is throttled: a token already held still reads.
        assert client.get("/api/academic/enrollments", headers=held).status_code == 200


def test_forwarded_for_is_believed_only_from_trusted_proxies(database_url: str, key: str) -> None:
    _away_from_minute_edge()
    # Not trusted: whatever X-Forwarded-For says, the address is the peer's.
    with (
        real_server(database_url, login_failures_per_minute=LIMIT) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        for i in range(LIMIT):
            assert _guess(client, **{"X-Forwarded-For": f"203.0.113.{i}"}).status_code == 401
        spoofed = _guess(client, **{"X-Forwarded-For": "198.51.100.7"})
        assert spoofed.status_code == 429
    # Trusted: each client the proxy names has its own count; IPv6 clients count by /64.
    with (
        real_server(
            database_url, login_failures_per_minute=LIMIT, trusted_proxies="127.0.0.1"
        ) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        for _ in range(LIMIT):
            assert _guess(client, **{"X-Forwarded-For": "203.0.113.9"}).status_code == 401
        assert _guess(client, **{"X-Forwarded-For": "203.0.113.9"}).status_code == 429
        # The right-most address not a trusted proxy is the client: prepending is no escape.
        faked = _guess(client, **{"X-Forwarded-For": "192.0.2.1, 203.0.113.9"})
        assert faked.status_code == 429
        other = client.post(
            "/api/jwt", headers={"Authorization": key, "X-Forwarded-For": "203.0.113.10"}
        )
        assert other.status_code == 200
        for i in range(LIMIT):
            v6 = {"X-Forwarded-For": f"2001:db8:1:2::{i + 1}"}
            assert _guess(client, **v6).status_code == 401
        assert _guess(client, **{"X-Forwarded-For": "2001:db8:1:2::ffff"}).status_code == 429
        assert _guess(client, **{"X-Forwarded-For": "2001:db8:1:3::1"}).status_code == 401


@pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="needs PostgreSQL (REGISTRAR_TEST_POSTGRES_URL)")
def test_processes_share_the_count(database_url: str, key: str) -> None:
    settings = make_settings(
        database_url,
        login_failures_per_minute=LIMIT,
        trusted_proxies="testclient",  # the test client's peer name: a client of its own here
        run_worker=False,
    )
    _away_from_minute_edge()
    headers = {"X-Forwarded-For": "192.0.2.77"}
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        for i in range(LIMIT):
            assert _guess(first if i % 2 else second, **headers).status_code == 401
        for client in (first, second):
            again = client.post("/api/jwt", headers={"Authorization": key, **headers})
            assert again.status_code == 429


@pytest.fixture(scope="module")
def unlimited(database_url: str) -> Iterator[TestClient]:
    settings = make_settings(database_url, login_failures_per_minute=0, run_worker=False)
    with TestClient(create_app(settings)) as client:
        yield client


def test_zero_turns_it_off(unlimited: TestClient) -> None:
    assert all(_guess(unlimited).status_code == 401 for _ in range(40))
