"""The deliverer's HTTP client (webhooks/sender.py) against a raw local server that answers as
each test scripts it: keep-alive reuse, chunked and close-delimited answers, a 204 that carries a
body anyway, a pooled connection the receiver closed, a redirect not followed."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable

import pytest

from registrar.webhooks.sender import Answer, ProtocolError, Sender
from registrar.webhooks.targets import Target

LOCAL = ipaddress.ip_address("127.0.0.1")
Script = Callable[[int], bytes]  # the n-th request on a connection -> the raw answer


async def serve(script: Script, *, close_after: int | None = None) -> tuple[asyncio.Server, list]:
    """A server answering each request with `script(n)`; closes a connection after
    `close_after` answers. The list collects (connection number, request line)."""
    seen: list[tuple[int, str]] = []
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number, answered = connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = next(
                    int(v)
                    for k, _, v in (x.partition(": ") for x in lines)
                    if k == "Content-Length"
                )
                await reader.readexactly(length)
                seen.append((number, lines[0]))
                writer.write(script(answered))
                await writer.drain()
                answered += 1
                if close_after is not None and answered >= close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


def target(server: asyncio.Server, path: str) -> Target:
    port = server.sockets[0].getsockname()[1]
    return Target(f"http://example.edu:{port}{path}", "example.edu", port, LOCAL)


async def post(sender: Sender, server: asyncio.Server, path: str = "/hook") -> int:
    return await sender.post(target(server, path), b'{"a":1}', {"webhook-id": "x"}, 1024)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize(
    "first",
    [
        OK,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_a_connection_is_reused_after_a_whole_answer(first: bytes) -> None:
    async def run() -> None:
        server, seen = await serve(lambda n: first if n == 0 else OK)
        sender = Sender(user_agent="t")
        statuses = [await post(sender, server) for _ in range(3)]
        assert statuses[1:] == [200, 200] and statuses[0] in (200, 202)
        assert [number for number, _line in seen] == [1, 1, 1]
        assert seen[0][1] == "POST /hook HTTP/1.1"
        await sender.aclose()
        server.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok",  # a body it may not have
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_a_connection_is_not_reused_when_the_answer_says_so(answer: bytes) -> None:
    async def run() -> None:
        server, seen = await serve(lambda n: answer)
        sender = Sender(user_agent="t")
        status = await post(sender, server)
        again = await post(sender, server)
        assert status == again == int(answer[9:12])  # a redirect is a status, not followed
        if answer.startswith(b"HTTP/1.1 302"):
            assert [n for n, _ in seen] == [1, 1]  # reused: nothing wrong with it
        else:
            assert [n for n, _ in seen] == [1, 2]
        await sender.aclose()
        server.close()

    asyncio.run(run())


def test_a_pooled_connection_the_receiver_closed_is_replaced() -> None:
    async def run() -> None:
        server, seen = await serve(lambda n: OK, close_after=1)
        sender = Sender(user_agent="t")
        assert await post(sender, server) == 200
        await asyncio.sleep(0.05)  # the close arrives while the connection is idle
        assert await post(sender, server) == 200
        assert [n for n, _ in seen] == [1, 2]
        await sender.aclose()
        server.close()

    asyncio.run(run())


def test_a_garbled_answer_is_a_protocol_error_and_the_status_is_kept_when_the_body_stalls() -> None:
    async def run() -> None:
        server, _seen = await serve(lambda n: b"SMTP ready\r\n\r\n")
        sender = Sender(user_agent="t")
        with pytest.raises(ProtocolError):
            await post(sender, server)
        server.close()
        stalled, _ = await serve(lambda n: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok")
        answer = Answer()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await sender.post(target(stalled, "/"), b"{}", {}, 1024, answer)
        assert answer.status == 200
        await sender.aclose()
        stalled.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    "answer",
    [
        # Latin-1 superscript digits: digits to str.isdigit, not to int().
        b"HTTP/1.1 \xb200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 70_000 + b"\r\n",
    ],
    ids=["status", "content-length", "negative-chunk", "endless-chunk-size"],
)
def test_any_malformed_answer_is_a_protocol_error(answer: bytes) -> None:
    """A hostile receiver's answer ends the attempt as a logged failure, never as an exception
    the deliverer does not expect (ValueError, LimitOverrunError)."""

    async def run() -> None:
        server, _seen = await serve(lambda n: answer)
        sender = Sender(user_agent="t")
        with pytest.raises(ProtocolError):
            await post(sender, server)
        await sender.aclose()
        server.close()

    asyncio.run(run())
