"""Retries against a real (scripted) HTTP server: 503 and 429 with Retry-After, connection
errors, the bounded total time, the same Idempotency-Key on every try. Sync and async alike."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from typing import Any

import pytest
from registrar_client import (
    APIConnectionError,
    RateLimited,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
)
from registrar_client._core import parse_retry_after

from tests.support.client import (
    Answer,
    ScriptedServer,
    close,
    collect,
    free_port,
    make_client,
    resolve,
)

EID = "AAAS.010.01-202001-U-10188-f002nkd-instructor"
PATH = f"/api/academic/enrollments/{EID}"
RECORD = {"id": EID, "netid": "f002nkd", "section": {"id": "AAAS.010.01-202001-U-10188"}}
UNAVAILABLE = {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": "db"}
TOO_MANY = {"title": "Too Many Requests", "status": 429, "detail": "slow down", "errors": []}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


async def test_503_with_retry_after_then_200(flavor: str, server: ScriptedServer) -> None:
    server.script(PATH, Answer(503, UNAVAILABLE, {"Retry-After": "1"}), Answer(200, RECORD))
    c = make_client(flavor, server.base_url, "rk_test")
    try:
        record = await resolve(c.enrollments.get(EID))
    finally:
        await close(c)
    assert record.section.id == "AAAS.010.01-202001-U-10188"
    calls = server.calls(PATH)
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 0.95  # waited what Retry-After said


async def test_429_with_retry_after_then_200(flavor: str, server: ScriptedServer) -> None:
    server.script(PATH, Answer(429, TOO_MANY, {"Retry-After": "1"}), Answer(200, RECORD))
    c = make_client(flavor, server.base_url, "rk_test")
    try:
        assert (await resolve(c.enrollments.get(EID))).id == EID
    finally:
        await close(c)
    calls = server.calls(PATH)
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 0.95


async def test_an_http_date_retry_after_is_honoured(flavor: str, server: ScriptedServer) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    server.script(PATH, Answer(503, UNAVAILABLE, {"Retry-After": when}), Answer(200, RECORD))
    c = make_client(flavor, server.base_url, "rk_test")
    try:
        await resolve(c.enrollments.get(EID))
    finally:
        await close(c)
    calls = server.calls(PATH)
    assert calls[1].at - calls[0].at >= 0.9  # HTTP dates have whole seconds


async def test_retries_stop_within_the_total_time(flavor: str, server: ScriptedServer) -> None:
    """Always 503, Retry-After 1, a 2.5 s budget: tries at 0, 1 and 2 s; a fourth would start
    at 3 s, past the budget, so the error is raised after the third."""
    server.script(PATH, Answer(503, UNAVAILABLE, {"Retry-After": "1"}))
    c = make_client(flavor, server.base_url, "rk_test", retry=RetryPolicy(total_seconds=2.5))
    started = time.monotonic()
    try:
        with pytest.raises(ServiceUnavailable) as caught:
            await resolve(c.enrollments.get(EID))
    finally:
        await close(c)
    elapsed = time.monotonic() - started
    assert len(server.calls(PATH)) == 3
    assert 1.9 <= elapsed < 2.5
    assert caught.value.status == 503
    assert caught.value.retry_after == 1
    assert caught.value.detail == "db"
    assert isinstance(caught.value, ServerError)


async def test_a_retry_after_beyond_the_budget_raises_at_once(
    flavor: str, server: ScriptedServer
) -> None:
    server.script(PATH, Answer(429, TOO_MANY, {"Retry-After": "120"}))
    c = make_client(flavor, server.base_url, "rk_test")  # default budget: 60 s
    started = time.monotonic()
    try:
        with pytest.raises(RateLimited) as caught:
            await resolve(c.enrollments.get(EID))
    finally:
        await close(c)
    assert time.monotonic() - started < 1
    assert len(server.calls(PATH)) == 1
    assert caught.value.retry_after == 120
    assert caught.value.detail == "slow down"


async def test_attempts_are_bounded_too(flavor: str, server: ScriptedServer) -> None:
    server.script(PATH, Answer(503, UNAVAILABLE, {"Retry-After": "0"}))
    c = make_client(flavor, server.base_url, "rk_test", retry=RetryPolicy(attempts=4))
    try:
        with pytest.raises(ServiceUnavailable):
            await resolve(c.enrollments.get(EID))
    finally:
        await close(c)
    assert len(server.calls(PATH)) == 4


async def test_other_errors_are_not_retried(flavor: str, server: ScriptedServer) -> None:
    server.script(PATH, Answer(500, {"title": "Internal Server Error", "status": 500}))
    c = make_client(flavor, server.base_url, "rk_test")
    try:
        with pytest.raises(ServerError) as caught:
            await resolve(c.enrollments.get(EID))
    finally:
        await close(c)
    assert caught.value.status == 500
    assert len(server.calls(PATH)) == 1


async def test_a_write_is_retried_with_the_same_idempotency_key(
    flavor: str, server: ScriptedServer
) -> None:
    server.script(
        PATH,
        Answer(503, UNAVAILABLE, {"Retry-After": "0"}),
        Answer(drop=True),  # the connection breaks after the request was sent
        Answer(429, TOO_MANY, {"Retry-After": "0"}),
        Answer(202, {"status": "accepted"}, {"Location": "/api/tasks/5cddb466b68a450c3b102bfd"}),
    )
    c = make_client(flavor, server.base_url, "rk_test", retry=RetryPolicy(backoff=0.05))
    try:
        task = await resolve(c.enrollments.set_course_assessment(EID, submit_date=None))
    finally:
        await close(c)
    assert task.id == "5cddb466b68a450c3b102bfd"
    assert task.status == "accepted"
    calls = server.calls(PATH)
    assert len(calls) == 4
    keys = {call.headers["Idempotency-Key"] for call in calls}
    assert len(keys) == 1 and len(keys.pop()) >= 32
    assert len({call.body for call in calls}) == 1  # the same bytes every time
    assert calls[0].body == b'{"course_assessment":{"submit_date":null,"opt_out_date":null}}'


async def test_a_given_idempotency_key_is_sent(flavor: str, server: ScriptedServer) -> None:
    server.script(
        "/api/academic/petitions",
        Answer(202, {"status": "accepted"}, {"Location": "/api/tasks/673e4c82185254cacb8d2967"}),
    )
    c = make_client(flavor, server.base_url, "rk_test")
    try:
        await resolve(
            c.petitions.create(
                netid="f006kdf",
                petition_code="Q41",
                origin_code="UREG",
                school="UG",
                grade_term="24F",
                idempotency_key="mine-1",
            )
        )
    finally:
        await close(c)
    (call,) = server.calls("/api/academic/petitions")
    assert call.headers["Idempotency-Key"] == "mine-1"
    assert call.headers["Content-Type"] == "application/json"


async def test_a_subscription_is_resent_with_the_same_idempotency_key(
    flavor: str, server: ScriptedServer
) -> None:
    """The connection breaks after the subscription was sent: the retry carries the same
    Idempotency-Key and bytes, so the server answers the first one's 201 (one subscription)."""
    hook = {"id": "wh_1", "url": "https://example.edu/hook", "types": ["enrollment.updated"]}
    server.script("/api/webhooks", Answer(drop=True), Answer(201, {**hook, "secret": "whsec_x"}))
    c = make_client(flavor, server.base_url, "rk_test", retry=RetryPolicy(backoff=0.05))
    try:
        created = await resolve(c.webhooks.create(hook["url"], ["enrollment.updated"]))
    finally:
        await close(c)
    assert created.secret == "whsec_x"
    calls = server.calls("/api/webhooks")
    assert len(calls) == 2
    assert len({call.headers["Idempotency-Key"] for call in calls}) == 1
    assert len({call.body for call in calls}) == 1


async def test_a_delivery_retry_is_not_resent_after_it_may_have_arrived(
    flavor: str, server: ScriptedServer
) -> None:
    """Sending a delivery again has no Idempotency-Key: a broken connection after sending is
    not retried (it could queue the delivery twice)."""
    path = "/api/webhooks/wh_1/deliveries/d1/retry"
    server.script(path, Answer(drop=True))
    c = make_client(flavor, server.base_url, "rk_test", retry=RetryPolicy(backoff=0.05))
    try:
        with pytest.raises(APIConnectionError):
            await resolve(c.webhooks.retry_delivery("wh_1", "d1"))
    finally:
        await close(c)
    assert len(server.calls(path)) == 1


async def test_reads_are_retried_on_a_dropped_connection(
    flavor: str, server: ScriptedServer
) -> None:
    server.script(PATH, Answer(drop=True), Answer(200, RECORD))
    c = make_client(flavor, server.base_url, "rk_test", retry=RetryPolicy(backoff=0.05))
    try:
        assert (await resolve(c.enrollments.get(EID))).id == EID
    finally:
        await close(c)
    assert len(server.calls(PATH)) == 2


async def test_a_refused_connection_fails_after_the_attempts(flavor: str) -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    c = make_client(flavor, base, "rk_test", retry=RetryPolicy(attempts=3, backoff=0.05))
    try:
        with pytest.raises(APIConnectionError) as caught:
            await resolve(c.enrollments.get(EID))
    finally:
        await close(c)
    assert "3 attempts" in str(caught.value)
    assert caught.value.status is None
    assert caught.value.__cause__ is not None


async def test_a_refused_token_is_renewed_once(flavor: str, server: ScriptedServer) -> None:
    server.script(PATH, Answer(200, RECORD))
    server.refuse_tokens = {"t1"}
    c = make_client(flavor, server.base_url, "rk_test")
    try:
        assert (await resolve(c.enrollments.get(EID))).id == EID
        assert server.logins == 2
        server.refuse_tokens = {"t2", "t3"}
        with pytest.raises(Unauthorized) as caught:
            await resolve(c.enrollments.get(EID))
        assert caught.value.detail == "expired"
    finally:
        await close(c)
    assert server.logins == 3  # renewed once more, then gave up
    logins = server.calls("/api/jwt")
    assert all(call.headers["Authorization"] == "rk_test" for call in logins)
    assert [c.headers["Authorization"] for c in server.calls(PATH)] == [
        "Bearer t1",
        "Bearer t2",
        "Bearer t2",
        "Bearer t3",
    ]


async def test_scopes_are_asked_for_space_separated(flavor: str, server: ScriptedServer) -> None:
    server.script("/api/academic/petitions", Answer(200, []))
    c = make_client(flavor, server.base_url, "rk_test", scopes=["a:read", "b:write"])
    try:
        assert await collect(c.petitions.list()) == []
    finally:
        await close(c)
    (login,) = server.calls("/api/jwt")
    assert login.method == "POST"
    assert login.path == "/api/jwt?scope=a%3Aread+b%3Awrite"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("0", 0.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: Any) -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:27:50 GMT").timestamp()
    assert parse_retry_after(header, now=now) == expected
