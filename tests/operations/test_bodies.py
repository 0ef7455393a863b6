"""Bodies: a cap (413, declared or streamed), a timeout for a stalled body (408), and a client that
hangs up mid-body is not an error; on a real uvicorn server and in process."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from registrar.auth.scopes import PETITIONS_WRITE
from tests.support.accounts import Accounts
from tests.support.servers import real_server

PETITIONS = "/api/academic/petitions"


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
        before = _petition_posts(port)
        logger.addHandler(keep)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(_head(writer_token, "Content-Length: 100\r\n") + b'{"petition":')
                time.sleep(0.2)  # the route is reading the body
            deadline = time.monotonic() + 5
            while not _posts_logged(seen):
                assert time.monotonic() < deadline, [r.getMessage() for r in seen]
                time.sleep(0.05)
        finally:
            logger.removeHandler(keep)
        after = _petition_posts(port)
    assert not [r for r in seen if r.levelno >= logging.ERROR], [r.getMessage() for r in seen]
    assert any("went away" in r.getMessage() for r in seen)
    # Logged and counted as what it is: the client closed the request (499), not our 500.
    (access,) = _posts_logged(seen)
    assert access.status == 499  # type: ignore[attr-defined]
    assert after.get("499", 0) == before.get("499", 0) + 1
    assert after.get("500", 0) == before.get("500", 0)


def _posts_logged(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """The access-log lines of petition POSTs (a scrape of /metrics may be logged meanwhile)."""
    return [
        r
        for r in records
        if r.name == "registrar.access" and getattr(r, "route", None) == PETITIONS
    ]


def _petition_posts(port: int) -> dict[str, float]:
    """registrar_http_requests_total for POST /api/academic/petitions, by status."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        ours = f'route="{PETITIONS}"' in line and 'method="POST"' in line
        if line.startswith("registrar_http_requests_total{") and ours:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            found[status] = float(line.rsplit(" ", 1)[1])
    return found


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
