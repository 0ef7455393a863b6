"""Rate limits per service account: headers, 429 past the limit, one count shared by every API
process on PostgreSQL (batched or exact), in memory on SQLite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ
from registrar.db.engine import is_sqlite
from tests.support.accounts import Accounts
from tests.support.databases import POSTGRES_ADMIN_URL, make_settings

ENROLLMENTS = "/api/academic/enrollments"


def _away_from_minute_edge() -> None:
    # The window is a fixed minute: a burst must not straddle two of them.
    if time.time() % 60 > 55:
        time.sleep(61 - time.time() % 60)


def test_rate_limit_per_account(accounts: Accounts, database_url: str) -> None:
    headers = accounts.headers([ENROLLMENTS_READ], sub="svc-burst")
    other = accounts.headers([ENROLLMENTS_READ], sub="svc-calm")
    settings = make_settings(database_url, rate_limit_per_minute=3, run_worker=False)
    _away_from_minute_edge()
    with TestClient(create_app(settings)) as client:
        seen = []
        for _ in range(3):
            r = client.get(ENROLLMENTS, headers=headers)
            assert r.status_code == 200
            seen.append(int(r.headers["RateLimit-Remaining"]))
            assert r.headers["RateLimit-Limit"] == "3"
            assert 1 <= int(r.headers["RateLimit-Reset"]) <= 60
        assert seen == [2, 1, 0]
        limited = client.get(ENROLLMENTS, headers=headers)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["status"] == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.headers["RateLimit-Remaining"] == "0"
        assert limited.headers["RateLimit-Limit"] == "3"
        assert "X-Correlation-ID" in limited.headers
        # Another account has its own budget; requests without a valid token are not counted.
        assert client.get(ENROLLMENTS, headers=other).status_code == 200
        assert client.get(ENROLLMENTS).status_code == 401
        assert "RateLimit-Limit" not in client.get("/health").headers
        if POSTGRES_ADMIN_URL:
            # A second API process (another app on the same database) shares the count.
            with TestClient(create_app(settings)) as second:
                assert second.get(ENROLLMENTS, headers=headers).status_code == 429
                assert second.get(ENROLLMENTS, headers=other).headers["RateLimit-Remaining"] == "1"


def test_rate_limit_is_off_by_default(api: TestClient, all_scopes: dict[str, str]) -> None:
    r = api.get(ENROLLMENTS, headers=all_scopes)
    assert "RateLimit-Limit" not in r.headers


def test_sqlite_runs_in_memory_rate_limit(database_url: str) -> None:
    from registrar.http.middleware.rate_limit import MemoryCounter, make_counter

    counter = make_counter(database_url, 2)
    assert isinstance(counter, MemoryCounter) == is_sqlite(database_url)
    asyncio.run(counter.close())


@pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="needs PostgreSQL (REGISTRAR_TEST_POSTGRES_URL)")
def test_shared_counter_exact_and_batched(api: TestClient, database_url: str) -> None:
    from registrar.http.middleware.rate_limit import DatabaseCounter

    async def go() -> tuple[int, int]:
        window = int(time.time() // 60) + 10  # a window no request uses
        results = []
        for batch, sub in ((1, "exact"), (20, "batched")):
            # Two "processes" taking turns, limit 100, 300 attempts.
            a = DatabaseCounter(database_url, 2, limit=100, batch=batch)
            b = DatabaseCounter(database_url, 2, limit=100, batch=batch)
            allowed = 0
            for i in range(300):
                if await (a if i % 2 else b).hit(sub, window) <= 100:
                    allowed += 1
            await a.close()
            await b.close()
            results.append(allowed)
        return results[0], results[1]

    exact, batched = asyncio.run(go())
    assert exact == 100
    assert 100 <= batched <= 100 + 20  # overshoot at most one batch per other process


def test_padded_bearer_header_is_counted_like_any_other(
    accounts: Accounts, database_url: str
) -> None:
    """Issue 9: `Bearer <4,000 spaces><jwt>` was skipped by the limiter (its own parser gave up on
    headers of 4,096 bytes or more) and accepted by the route: 300 of 300 answered 200 over the
    limit. One parser now answers for both: such a header is accepted, and counted."""
    token = accounts.token("svc-padded", [ENROLLMENTS_READ])
    padded = {"Authorization": "Bearer " + " " * 4000 + token}
    settings = make_settings(
        database_url, rate_limit_per_minute=100, rate_limit_batch=1, run_worker=False
    )
    _away_from_minute_edge()
    with TestClient(create_app(settings)) as client:
        statuses = [client.get(ENROLLMENTS, headers=padded).status_code for _ in range(300)]
    assert statuses[:100] == [200] * 100
    assert statuses[100:] == [429] * 200


@pytest.fixture(scope="module")
def limited(database_url: str) -> Iterator[TestClient]:
    settings = make_settings(database_url, rate_limit_per_minute=1_000_000, run_worker=False)
    with TestClient(create_app(settings)) as client:
        yield client


@given(
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "BeArEr", "Bearer:", "Basic", "Token"]),
    gap=st.text(alphabet=" \t", max_size=6000),
    tail=st.text(alphabet=" \t", max_size=50),
    mangle=st.sampled_from(["", "drop-last", "extra-char", "quote", "comma", "split"]),
)
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_limiter_counts_exactly_what_the_route_accepts(
    limited: TestClient, accounts: Accounts, scheme: str, gap: str, tail: str, mangle: str
) -> None:
    """Whatever the shape of the header, either the route accepts it and the limiter counted it
    (RateLimit headers), or both refuse it (401, uncounted)."""
    token = accounts.token("svc-shapes", [ENROLLMENTS_READ])
    token = {
        "": token,
        "drop-last": token[:-1],
        "extra-char": token + "x",
        "quote": f'"{token}"',
        "comma": token + ",x",
        "split": token[:20] + " " + token[20:],
    }[mangle]
    response = limited.get(ENROLLMENTS, headers={"Authorization": f"{scheme}{gap}{token}{tail}"})
    counted = "RateLimit-Limit" in response.headers
    assert response.status_code in (200, 401), response.text
    assert counted == (response.status_code == 200)
    well_formed = scheme.lower() == "bearer" and gap != "" and mangle in ("",)
    assert (response.status_code == 200) == well_formed
