"""The deliverer's HTTP client: one POST of a signed event to a checked address, over pooled
keep-alive HTTP/1.1 connections, and the answer's status code.

Why not httpx: a profile of the webhook bench (py-spy, one worker delivering to a receiver that
answers at once) had httpx and httpcore at two thirds of the worker's event-loop time: per request,
the pool's bookkeeping asks every pooled connection whether it expired (`getpeername` and a poll
each), anyio's stream wrappers, h11's event objects, auth and redirect plumbing a webhook never
uses. A delivery needs little of it: one request shape (POST, a known body), the status line, and
the answer read (up to a bound) only to keep the connection. This does that on asyncio streams.

What it keeps from the httpx setup it replaces: it connects to the address the SSRF guard checked
(`Target.address`), with the URL's host in `Host` and as TLS's server name (certificates checked
against certifi's roots, as httpx did); it never follows a redirect (a 3xx is a status like any
other); no proxy from the environment; the caller's `asyncio.timeout` bounds the whole attempt.
A pooled connection the receiver closed while idle is noticed before reuse (EOF seen by the event
loop) or, if the close races the request, the request is sent once more on a new connection when
nothing of an answer arrived (at-least-once: receivers deduplicate on `webhook-id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict
from urllib.parse import urlsplit

from registrar.webhooks.targets import Target

_Key = tuple[str, str, int]  # scheme, checked address, port (and the TLS name below)
_HEAD_LIMIT = 64 * 1024


class ProtocolError(Exception):
    """The receiver broke the HTTP exchange (a malformed or missing answer)."""


class ConnectError(Exception):
    """No connection to the receiver (refused, unreachable, TLS failed)."""


class Answer:
    """What arrived of an answer: its status once the head is read (a body that then stalls
    does not take the status back)."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status: int | None = None


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        """Open, and nothing arrived unasked (bytes an idle connection received are no answer
        to the next request)."""
        unread = getattr(self.reader, "_buffer", None)
        return (
            not self.reader.at_eof()
            and not self.writer.transport.is_closing()
            and not unread  # asyncio.StreamReader's buffer: no public way to ask
        )

    def close(self) -> None:
        self.writer.transport.abort()


class Sender:
    """POSTs over pooled connections, `idle_per_target` kept per (scheme, address, port, host)."""

    def __init__(self, *, user_agent: str, idle_per_target: int = 16) -> None:
        self.user_agent = user_agent
        self.idle_per_target = idle_per_target
        self._idle: defaultdict[tuple[_Key, str], list[_Connection]] = defaultdict(list)
        self._ssl: ssl.SSLContext | None = None

    async def post(
        self,
        target: Target,
        body: bytes,
        headers: dict[str, str],
        answer_bytes: int,
        answer: Answer | None = None,
    ) -> int:
        """POST `body` to `target`; the answer's status code (its body read up to
        `answer_bytes`, then the connection dropped), also set on `answer` as soon as known."""
        answer = answer if answer is not None else Answer()
        parts = urlsplit(target.url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [f"POST {path} HTTP/1.1", f"Host: {target.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"User-Agent: {self.user_agent}", f"Content-Length: {len(body)}", "", ""]
        request = "\r\n".join(lines).encode("latin-1") + body
        key = ((parts.scheme, str(target.address), target.port), target.host)
        for attempt in (0, 1):
            connection, reused = self._pooled(key), True
            if connection is None:
                connection, reused = await self._connect(parts.scheme, target), False
            try:
                connection.writer.write(request)
                status, keep = await self._answer(connection.reader, answer_bytes, answer)
            except (ConnectionError, asyncio.IncompleteReadError, ProtocolError) as exc:
                connection.close()
                nothing = isinstance(exc, ConnectionError) or (
                    isinstance(exc, asyncio.IncompleteReadError) and not exc.partial
                )
                if reused and nothing and attempt == 0:
                    continue  # closed by the receiver while pooled: once more, afresh
                if isinstance(exc, ProtocolError):
                    raise
                raise ProtocolError("the receiver closed the connection") from exc
            except BaseException:
                connection.close()  # a timeout or cancellation mid-exchange
                raise
            if keep:
                self._release(key, connection)
            else:
                connection.close()
            return status
        raise AssertionError("unreachable")

    def _pooled(self, key: tuple[_Key, str]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
            connection.close()
        return None

    def _release(self, key: tuple[_Key, str], connection: _Connection) -> None:
        idle = self._idle[key]
        if len(idle) < self.idle_per_target and connection.usable:
            idle.append(connection)
        else:
            connection.close()

    async def _connect(self, scheme: str, target: Target) -> _Connection:
        tls = None
        if scheme == "https":
            tls = self._ssl_context()
        try:
            reader, writer = await asyncio.open_connection(
                str(target.address),
                target.port,
                ssl=tls,
                # TLS checks the URL's name, not the address connected to.
                server_hostname=target.host if tls is not None else None,
                limit=_HEAD_LIMIT,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(str(exc)) from exc
        return _Connection(reader, writer)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - certifi comes with httpx
                self._ssl = ssl.create_default_context()
        return self._ssl

    async def _answer(
        self, reader: asyncio.StreamReader, limit: int, answer: Answer
    ) -> tuple[int, bool]:
        """The status code, and whether the connection may be used again (the answer read whole
        within `limit` and not `Connection: close`)."""
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as exc:
                raise ProtocolError("the answer's head is too long") from exc
            status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
            version, _sp, rest = status_line.partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not _digits(code):
                raise ProtocolError("not an HTTP/1.1 answer")
            status = int(code)
            if 100 <= status < 200:
                continue  # 100 Continue and other interim answers: the final one follows
            break
        fields: dict[str, str] = {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError("a malformed header line")
            fields[name.strip().lower()] = value.strip()
        answer.status = status
        keep = version == "HTTP/1.1" and fields.get("connection", "").lower() != "close"
        if status in (204, 304):
            # No body, whatever the head says (RFC 9112 6.3); a receiver that sends one anyway
            # would leave it to be read as the next answer: such a connection is not reused.
            return status, keep and fields.get("content-length", "0") == "0"
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return status, keep and await _read_chunked(reader, limit)
        length = fields.get("content-length")
        if length is not None:
            if not _digits(length):
                raise ProtocolError("a malformed Content-Length")
            size = int(length)
            if size > limit:
                return status, False  # not read: dropped with the connection
            if size:
                await reader.readexactly(size)
            return status, keep
        return status, False  # delimited by the close: not read, the connection dropped

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                with contextlib.suppress(Exception):
                    connection.close()
        self._idle.clear()


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit also takes Latin-1's superscripts, which int() refuses."""
    return text.isascii() and text.isdigit()


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bool:
    """Read a chunked body; False (stop, drop the connection) past `limit` bytes."""
    try:
        return await _read_chunks(reader, limit)
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError("a chunk's size line is too long") from exc


async def _read_chunks(reader: asyncio.StreamReader, limit: int) -> bool:
    read = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise ProtocolError("a malformed chunk")  # int(.., 16) would take "-5" or "0x5"
        size = int(size_text, 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return True
        read += size
        if read > limit:
            return False
        await reader.readexactly(size + 2)
