"""Issue #5 under fire: correlation ids, logs, metrics, rate limits, security headers, CORS, body
cap and timeout on a real server, and a database that goes away and comes back (PostgreSQL)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import text

from registrar.app import create_app
from registrar.auth.scopes import ALL_SCOPES, ENROLLMENTS_READ, PETITIONS_WRITE
from registrar.db.engine import is_sqlite
from tests.conftest import POSTGRES_ADMIN_URL, Accounts, make_settings

ENROLLMENTS = "/api/academic/enrollments"
PETITIONS = "/api/academic/petitions"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- correlation id, headers, CORS ------------------------------------------------------------


def test_every_response_has_a_correlation_id(api: TestClient) -> None:
    generated = api.get("/health")
    assert len(generated.headers["X-Correlation-ID"]) == 32
    echoed = api.get(ENROLLMENTS, headers={"X-Correlation-ID": "abc-123.x"})
    assert echoed.status_code == 401
    assert echoed.headers["X-Correlation-ID"] == "abc-123.x"
    # Not plain: replaced, never echoed (no header or log injection).
    odd = api.get("/health", headers={"X-Correlation-ID": "a b\tc" + "x" * 200})
    assert odd.headers["X-Correlation-ID"] != "a b\tc" + "x" * 200
    assert len(odd.headers["X-Correlation-ID"]) == 32


def test_security_headers(api: TestClient, all_scopes: dict[str, str]) -> None:
    for response in (
        api.get(ENROLLMENTS, headers=all_scopes),
        api.get(ENROLLMENTS),
        api.get("/no/such/path"),
        api.get("/health"),
    ):
        h = response.headers
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Cache-Control"] == "no-store"
        assert h["Content-Security-Policy"].startswith("default-src 'none'")
    jwks = api.get("/api/jwks")
    assert jwks.headers["Cache-Control"].startswith("public")  # public keys may be cached
    docs = api.get("/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" in docs.headers["Content-Security-Policy"]


def test_cors_is_off_unless_configured(api: TestClient, database_url: str) -> None:
    preflight = {"Origin": "https://app.example.edu", "Access-Control-Request-Method": "GET"}
    off = api.options(ENROLLMENTS, headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    settings = make_settings(
        database_url, cors_origins=["https://app.example.edu"], run_worker=False
    )
    with TestClient(create_app(settings)) as client:
        pre = client.options(
            ENROLLMENTS, headers={**preflight, "Access-Control-Request-Headers": "Authorization"}
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example.edu"
        simple = client.get(ENROLLMENTS, headers={"Origin": "https://app.example.edu"})
        exposed = simple.headers["access-control-expose-headers"]
        for name in ("X-Request-ID", "X-Total-Count", "Link", "Location", "RateLimit-Remaining"):
            assert name in exposed
        other = client.get(ENROLLMENTS, headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


# --- private keys are never served, secrets never logged ---------------------------------------


def test_no_endpoint_serves_private_signing_keys(api: TestClient, database_url: str) -> None:
    jwks = api.get("/api/jwks").json()
    for key in jwks["keys"]:
        assert set(key) <= {"kty", "crv", "x", "kid", "alg", "use"}  # no "d": public only
    private = _query(database_url, "SELECT private_key FROM signing_keys")
    assert private
    spec = api.get("/openapi.json").text
    for pem in private:
        body = pem.split("-----")[2].strip() if "-----" in pem else pem
        assert body[:40] not in api.get("/api/jwks").text
        assert body[:40] not in spec
    assert not [p for p in json.loads(spec)["paths"] if "private" in p or "signing" in p]


def _query(database_url: str, sql: str) -> list[str]:
    """First column of `sql`, read with the service's own (async) engine."""

    async def go() -> list[str]:
        from registrar.core.runtime import Runtime
        from registrar.core.settings import Settings

        runtime = Runtime.build(Settings(database_url=database_url))
        try:
            async with runtime.db.reading() as session:
                return [str(row[0]) for row in await session.execute(text(sql))]
        finally:
            await runtime.close()

    return asyncio.run(go())


def test_logs_are_json_and_never_contain_keys_or_tokens(
    api: TestClient, accounts: Accounts, database_url: str
) -> None:
    key = accounts.key("svc-logs", [ENROLLMENTS_READ])
    settings = make_settings(database_url, log_json=True, run_worker=False)
    stream = io.StringIO()
    with TestClient(create_app(settings)) as client:
        # create_app installed the JSON handler on "registrar"; tee it into our buffer.
        logger = logging.getLogger("registrar")
        ours = next(h for h in logger.handlers if getattr(h, "_registrar_handler", False))
        capture = logging.StreamHandler(stream)
        capture.filters = ours.filters
        capture.setFormatter(ours.formatter)
        logger.addHandler(capture)
        try:
            login = client.post("/api/jwt", headers={"Authorization": key})
            assert login.status_code == 200
            token = login.json()["jwt"]
            got = client.get(
                ENROLLMENTS,
                headers={"Authorization": f"Bearer {token}", "X-Correlation-ID": "trace-42"},
            )
            assert got.status_code == 200
            bad = client.get(ENROLLMENTS, headers={"Authorization": f"Bearer {token}x"})
            assert bad.status_code == 401
            # A library that quotes a secret by accident is scrubbed too.
            logging.getLogger("registrar.test").warning("oops %s %s", key, token)
        finally:
            logger.removeHandler(capture)
    out = stream.getvalue()
    assert key not in out and token not in out
    assert token.split(".")[1] not in out and token.split(".")[2] not in out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    access = [r for r in lines if r["logger"] == "registrar.access"]
    mine = next(r for r in access if r.get("request_id") == "trace-42")
    assert mine["method"] == "GET"
    assert mine["route"] == ENROLLMENTS
    assert mine["status"] == 200
    assert mine["sub"] == "svc-logs"
    assert isinstance(mine["duration_ms"], float)
    assert any(r["status"] == 401 and "sub" not in r for r in access)
    assert any("[redacted]" in r["message"] for r in lines if r["logger"] == "registrar.test")


# --- metrics -----------------------------------------------------------------------------------


def _insert_old_accepted_task(database_url: str) -> None:
    async def go() -> None:
        from registrar.core.runtime import Runtime
        from registrar.core.settings import Settings

        runtime = Runtime.build(Settings(database_url=database_url))
        try:
            async with runtime.db.writing() as session:
                await session.execute(
                    text(
                        "INSERT INTO tasks (id, resource, action, requester, sub, private_scope, "
                        "status, request_date, worker_data, base_url, called_url, attempts, "
                        "max_attempts, run_at) VALUES ('aaaaaaaaaaaaaaaaaaaaaaaa', "
                        "'academic.petitions', 'POST', '{}', 'svc-metrics', false, 'accepted', "
                        ":old, '{}', 'http://x', 'http://x', 0, 5, :future)"
                    ),
                    {
                        "old": _ago(120),
                        # Far in the future, so a worker (another test's app) leaves it queued.
                        "future": _ago(-3600),
                    },
                )
        finally:
            await runtime.close()

    asyncio.run(go())


def _ago(seconds: float) -> object:
    import datetime as dt

    value = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    return value.replace(tzinfo=None) if not POSTGRES_ADMIN_URL else value


def test_metrics(api: TestClient, all_scopes: dict[str, str], database_url: str) -> None:
    _insert_old_accepted_task(database_url)
    api.get(f"{ENROLLMENTS}/NOPE-x-student", headers=all_scopes)
    api.get("/not/a/route")
    body = api.get("/metrics")
    assert body.status_code == 200
    assert body.headers["content-type"].startswith("text/plain")
    text_ = body.text
    assert (
        'registrar_http_request_duration_seconds_bucket{le="0.005",method="GET",'
        'route="/api/academic/enrollments/{enrollment_id}",status="404"}' in text_
    )
    assert 'registrar_http_requests_total{method="GET",route="<unmatched>",status="404"}' in text_
    assert 'registrar_tasks{status="accepted"} 1.0' in text_
    assert 'registrar_tasks{status="error"}' in text_
    age = next(
        float(line.split()[-1])
        for line in text_.splitlines()
        if line.startswith("registrar_task_oldest_accepted_age_seconds ")
    )
    assert 100 < age < 1000
    assert "registrar_database_up 1.0" in text_
    assert "/metrics" not in api.get("/openapi.json").json()["paths"]


# --- rate limiting -----------------------------------------------------------------------------


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


# --- body cap and stalled bodies, on a real uvicorn server -------------------------------------


@contextmanager
def real_server(database_url: str, **overrides: object) -> Iterator[int]:
    port = free_port()
    settings = make_settings(database_url, run_worker=False, **overrides)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_keep_alive=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _raw(port: int, head: bytes, body_parts: list[bytes], wait: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head)
        for part in body_parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed before taking it all: fine
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
                if b"\r\n\r\n" in b"".join(chunks) and b'"status":' in b"".join(chunks):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


@pytest.fixture(scope="module")
def writer_token(accounts: Accounts) -> str:
    return accounts.token("svc-bodies", [PETITIONS_WRITE])


def _head(token: str, extra: str) -> bytes:
    return (
        f"POST {PETITIONS} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_body_cap_and_stalled_body_on_a_real_server(database_url: str, writer_token: str) -> None:
    with real_server(database_url, max_body_bytes=1000, body_timeout_seconds=1) as port:
        # Declared too large: 413 before the body is read.
        declared = _raw(port, _head(writer_token, "Content-Length: 5000\r\n"), [b"x" * 5000])
        assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
        assert b"application/problem+json" in declared
        # Streamed (chunked, no length) past the cap: 413, not the route's 400.
        chunk = b"x" * 400
        parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)] + [b"0\r\n\r\n"]
        streamed = _raw(port, _head(writer_token, "Transfer-Encoding: chunked\r\n"), parts)
        assert streamed.startswith(b"HTTP/1.1 413"), streamed[:200]
        # Half a body, then silence: 408 after the body timeout, and the connection is closed.
        started = time.monotonic()
        stalled = _raw(port, _head(writer_token, "Content-Length: 100\r\n"), [b'{"petition":'])
        took = time.monotonic() - started
        assert stalled.startswith(b"HTTP/1.1 408"), stalled[:200]
        assert b"connection: close" in stalled.lower()
        assert 0.9 <= took < 5
        # A whole, small body still goes through to the route (202 or a 4xx of its own).
        whole = _raw(port, _head(writer_token, "Content-Length: 2\r\n"), [b"{}"])
        assert whole.startswith(b"HTTP/1.1 4"), whole[:200]
        assert not whole.startswith(b"HTTP/1.1 408") and not whole.startswith(b"HTTP/1.1 413")


def test_a_client_that_leaves_mid_body_is_not_an_error(
    database_url: str, writer_token: str
) -> None:
    """Load generators and impatient clients hang up mid-request: nothing to answer, no 500."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep(level=logging.DEBUG)
    logger = logging.getLogger("registrar")
    with real_server(database_url, body_timeout_seconds=5) as port:
        logger.addHandler(keep)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(_head(writer_token, "Content-Length: 100\r\n") + b'{"petition":')
                time.sleep(0.2)  # the route is reading the body
            deadline = time.monotonic() + 5
            while not any("went away" in r.getMessage() for r in seen):
                assert time.monotonic() < deadline, [r.getMessage() for r in seen]
                time.sleep(0.05)
        finally:
            logger.removeHandler(keep)
    assert not [r for r in seen if r.levelno >= logging.ERROR], [r.getMessage() for r in seen]


def test_body_cap_in_process(api: TestClient, accounts: Accounts) -> None:
    headers = accounts.headers([PETITIONS_WRITE], sub="svc-bodies")
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    declared = api.post(
        PETITIONS, headers={**headers, "Content-Type": "application/json"}, content=big
    )
    assert declared.status_code == 413

    def stream() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    chunked = api.post(
        PETITIONS, headers={**headers, "Content-Type": "application/json"}, content=stream()
    )
    assert chunked.status_code == 413
    assert chunked.headers["content-type"] == "application/problem+json"


# --- the database goes away and comes back (PostgreSQL, through a TCP proxy) -------------------


class TcpProxy:
    """127.0.0.1:<port> -> the PostgreSQL server; `down()` refuses and cuts every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _down(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    def up(self) -> None:
        self._call(self._up())

    def down(self) -> None:
        self._call(self._down())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="needs PostgreSQL (REGISTRAR_TEST_POSTGRES_URL)")
def test_database_outage_503_then_recovery_without_restart(
    database_url: str, accounts: Accounts
) -> None:
    from sqlalchemy.engine import make_url

    real = make_url(database_url)
    proxy = TcpProxy(real.port or 5432)
    proxy.up()
    via_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = make_settings(via_proxy, run_worker=True, db_unavailable_retry_after_seconds=7)
    headers = accounts.headers(list(ALL_SCOPES), sub="svc-all")
    petition = {
        "petition": {
            "netid": "nobody",
            "petition_code": "Q14",
            "origin_code": "UREG",
            "school": "UG",
            "decision": "A",
            "grade_term": "24F",
            "user_netid": "reg1",
        }
    }
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/health").status_code == 200
            assert client.get(ENROLLMENTS, headers=headers).status_code == 200
            accepted = client.post(PETITIONS, headers=headers, json=petition)
            assert accepted.status_code == 202
            task_path = accepted.headers["Location"]

            proxy.down()
            health = client.get("/health")
            assert health.status_code == 503
            assert health.headers["Retry-After"] == "7"
            for _ in range(2):  # the first use of a dead pooled connection, then a fresh connect
                down = client.get(ENROLLMENTS, headers=headers)
                assert down.status_code == 503, down.text
                assert down.headers["content-type"] == "application/problem+json"
                assert down.headers["Retry-After"] == "7"
            refused = client.post(PETITIONS, headers=headers, json=petition)
            assert refused.status_code == 503  # not 202: nothing is accepted that could be lost

            proxy.up()
            deadline = time.time() + 20
            while client.get(ENROLLMENTS, headers=headers).status_code != 200:
                assert time.time() < deadline, "did not recover"
                time.sleep(0.2)
            assert client.get("/health").status_code == 200
            # The task accepted before the outage is still there and finishes.
            deadline = time.time() + 30
            while (task := client.get(task_path, headers=headers).json())["status"] == "accepted":
                assert time.time() < deadline, task
                time.sleep(0.2)
            assert task["status"] in ("complete", "error")
    finally:
        proxy.close()


def test_sqlite_runs_in_memory_rate_limit(database_url: str) -> None:
    from registrar.http.middleware.rate_limit import MemoryCounter, make_counter

    counter = make_counter(database_url, 2)
    assert isinstance(counter, MemoryCounter) == is_sqlite(database_url)
    asyncio.run(counter.close())


@pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="needs PostgreSQL (REGISTRAR_TEST_POSTGRES_URL)")
def test_start_waits_for_a_database_that_comes_up_late(database_url: str) -> None:
    from sqlalchemy.engine import make_url

    real = make_url(database_url)
    proxy = TcpProxy(real.port or 5432)  # not up yet: connections are refused
    via_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = make_settings(via_proxy, run_worker=False, db_startup_timeout_seconds=20)
    timer = threading.Timer(1.5, proxy.up)
    timer.start()
    try:
        started = time.monotonic()
        with TestClient(create_app(settings)) as client:
            assert time.monotonic() - started >= 1.4
            assert client.get("/health").status_code == 200
    finally:
        timer.cancel()
        proxy.close()


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
