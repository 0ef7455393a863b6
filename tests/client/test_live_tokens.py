"""Tokens, waiting and rate limits against live servers configured for them: short-lived tokens
(and no worker, so tasks stay `accepted`), and a tight per-account rate limit."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from registrar_client import (
    Forbidden,
    RateLimited,
    Registrar,
    RetryPolicy,
    TaskTimeout,
    Unauthorized,
)
from registrar_client._core import Token

from tests.support.client import (
    ALL_SCOPES,
    PETITIONS_WRITE,
    READ,
    LiveServer,
    RequestLog,
    close,
    collect,
    live_server,
    make_client,
    resolve,
)

LIFETIME = 3  # seconds


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Tokens live 3 s with no leeway; no worker runs tasks."""
    settings = {
        "REGISTRAR_TOKEN_LIFETIME_SECONDS": str(LIFETIME),
        "REGISTRAR_TOKEN_LEEWAY_SECONDS": "0",
    }
    with live_server(tmp_path_factory.mktemp("client-short"), settings, worker=False) as server:
        yield server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = {"REGISTRAR_RATE_LIMIT_PER_MINUTE": "5"}
    with live_server(tmp_path_factory.mktemp("client-limited"), settings) as server:
        yield server


async def test_the_token_is_renewed_before_it_expires(flavor: str, short: LiveServer) -> None:
    log = RequestLog()
    c = make_client(flavor, short.base_url, short.key("tok-renew", ALL_SCOPES), log=log)
    try:
        started = time.monotonic()
        calls = 0
        while time.monotonic() - started < 2 * LIFETIME:
            await collect(c.enrollments.list())
            calls += 1
            await asyncio.sleep(0.25)
    finally:
        await close(c)
    logins = log.count("/api/jwt", 200)
    assert 3 <= logins <= 7, logins  # renewed early in each lifetime
    assert log.count("/api/academic/enrollments", 401) == 0  # never sent an expired token
    assert log.count("/api/academic/enrollments", 200) == calls


async def test_an_expired_token_refused_with_401_is_renewed_once(
    flavor: str, short: LiveServer
) -> None:
    """A client that believes its token is still good (here: told so) meets the server's 401,
    renews the token once and repeats the request."""
    log = RequestLog()
    c = make_client(flavor, short.base_url, short.key("tok-expired", ALL_SCOPES), log=log)
    try:
        await collect(c.enrollments.list())
        await asyncio.sleep(LIFETIME + 1)  # expired, as far as the server is concerned
        token: Token = c._core.token
        far = time.monotonic() + 3600
        c._core.token = Token(
            token.jwt, token.header, token.claims, token.accepted_scopes, far, far
        )
        await collect(c.enrollments.list())
    finally:
        await close(c)
    assert log.count("/api/academic/enrollments", 401) == 1
    assert log.count("/api/academic/enrollments", 200) == 2
    assert log.count("/api/jwt", 200) == 2


async def test_a_401_after_renewing_is_raised_not_looped(flavor: str, short: LiveServer) -> None:
    log = RequestLog()
    sub = f"tok-revoked-{flavor}"
    c = make_client(flavor, short.base_url, short.key(sub, ALL_SCOPES), log=log)
    try:
        await collect(c.enrollments.list())
        short.cli("clients", "revoke", sub)
        c._core.token = None  # the next call logs in again, with a revoked key
        with pytest.raises(Unauthorized):
            await collect(c.enrollments.list())
    finally:
        await close(c)
    assert log.count("/api/jwt", 401) == 1


async def test_scopes_narrow_the_token(flavor: str, short: LiveServer) -> None:
    c = make_client(flavor, short.base_url, short.key("tok-narrow", ALL_SCOPES), scopes=[READ])
    try:
        await collect(c.enrollments.list())
        assert c.token_claims["scope"] == READ
        with pytest.raises(Forbidden):
            await collect(c.petitions.list())
    finally:
        await close(c)


def test_threads_sharing_a_client_log_in_once(short: LiveServer) -> None:
    log = RequestLog()
    client = Registrar(
        short.base_url,
        short.key("tok-threads", ALL_SCOPES),
        http_client=log.http_client("sync"),
    )
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            list(client.enrollments.list())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client._http.close()
    assert not errors
    assert log.count("/api/jwt") == 1
    assert log.count("/api/academic/enrollments", 200) == 8


async def test_tasks_sharing_an_async_client_log_in_once(short: LiveServer) -> None:
    log = RequestLog()
    c = make_client("async", short.base_url, short.key("tok-tasks", ALL_SCOPES), log=log)
    try:
        await asyncio.gather(*[collect(c.enrollments.list()) for _ in range(8)])
    finally:
        await close(c)
    assert log.count("/api/jwt") == 1


async def test_wait_times_out_with_the_last_state(flavor: str, short: LiveServer) -> None:
    """No worker runs here: the task stays `accepted`. The whole timeout is one request the
    server holds (`?wait=1.5`), not a hold and then polls."""
    log = RequestLog()
    c = make_client(flavor, short.base_url, short.key("tok-wait", (PETITIONS_WRITE,)), log=log)
    try:
        task = await resolve(
            c.petitions.create(
                netid="f001stu",
                petition_code="Q41",
                origin_code="UREG",
                school="UG",
                grade_term="24F",
            )
        )
        started = time.monotonic()
        with pytest.raises(TaskTimeout) as caught:
            await resolve(task.wait(timeout=1.5))
        elapsed = time.monotonic() - started
    finally:
        await close(c)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.task.status == "accepted"
    assert caught.value.task.id == task.id
    assert 1.5 <= elapsed < 5
    polls = [u for u in log.urls if u.path == f"/api/tasks/{task.id}"]
    assert [u.params.get("wait") for u in polls] == ["1.5"]


async def test_rate_limited_beyond_the_retry_budget(flavor: str, limited: LiveServer) -> None:
    """5 requests a minute: the server's Retry-After (the rest of the minute) is longer than
    the client's retry budget, so the client raises RateLimited at once instead of waiting."""
    c = make_client(
        flavor,
        limited.base_url,
        limited.key(f"limited-{flavor}", ALL_SCOPES),
        retry=RetryPolicy(total_seconds=2),
    )
    try:
        with pytest.raises(RateLimited) as caught:
            for _ in range(12):
                started = time.monotonic()
                await collect(c.enrollments.list())
        assert time.monotonic() - started < 2.5
    finally:
        await close(c)
    assert caught.value.status == 429
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert caught.value.headers.get("retry-after")
