"""Helpers for the Python client's tests: a live `registrar serve`, a scripted HTTP server, a
proxy that cuts connections, and one way to drive the sync and the async client alike."""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from registrar.auth import scopes
from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    ENROLLMENTS_WRITE,
    PEOPLE_PRIVATE,
)
from tests.support.databases import new_database_url
from tests.support.servers import free_port

BIN = Path(sys.executable).parent

READ = ENROLLMENTS_READ
SENSITIVE = ENROLLMENTS_READ_SENSITIVE
WRITE = ENROLLMENTS_WRITE
PRIVATE = PEOPLE_PRIVATE
ALL_SCOPES = scopes.ALL_SCOPES
PETITIONS_READ = scopes.PETITIONS_READ
PETITIONS_WRITE = scopes.PETITIONS_WRITE


# --- a live server -------------------------------------------------------------------------


@dataclass
class LiveServer:
    base_url: str
    env: dict[str, str]
    tmp: Path
    keys: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [str(BIN / "registrar"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def key(self, sub: str, scopes: Iterable[str]) -> str:
        """A service account granted `scopes` (created once per server); its API key."""
        if sub not in self.keys:
            out = self.cli(
                *("clients", "create", "--sub", sub, "--name", f"{sub} app"),
                *("--email", f"{sub}@example.edu", "--scopes", " ".join(scopes)),
            )
            self.keys[sub] = out.strip().splitlines()[-1]
        return self.keys[sub]

    def load(self, records: list[dict[str, Any]]) -> str:
        path = self.tmp / f"extract-{secrets.token_hex(4)}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return self.cli("load", str(path))


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registrar serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def live_server(
    tmp: Path,
    settings: dict[str, str] | None = None,
    *,
    worker: bool = True,
    database_url: str | None = None,
) -> Iterator[LiveServer]:
    """`registrar serve` on a free port over a new database (dropped afterwards), or over
    `database_url` (kept: a restart), stopped (SIGTERM) afterwards."""
    if database_url is None:
        database_url, drop = new_database_url(tmp)
    else:
        drop = lambda: None  # noqa: E731 - the caller's database outlives this server
    port = free_port()
    env = {
        "REGISTRAR_DATABASE_URL": database_url,
        "REGISTRAR_LOG_JSON": "false",
        "REGISTRAR_LOG_LEVEL": "WARNING",
        "REGISTRAR_WORKER_POLL_SECONDS": "0.05",
        **(settings or {}),
    }
    args = [str(BIN / "registrar"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if not worker:
        args.append("--no-worker")
    log = (tmp / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        yield LiveServer(f"http://127.0.0.1:{port}", env, tmp)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        drop()


@contextlib.contextmanager
def worker_process(server: LiveServer) -> Iterator[subprocess.Popen[bytes]]:
    """`registrar worker` over the server's database (a server started with worker=False),
    stopped (SIGTERM) afterwards."""
    log = (server.tmp / f"worker-{secrets.token_hex(4)}.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "registrar"), "worker"],
        env={**os.environ, **server.env},
        stdout=log,
        stderr=log,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- the extract the live tests read -------------------------------------------------------

TERMS = {
    "201809": ("FA18", "201809-U"),
    "201901": ("WI19", "201901-U"),
    "202001": ("WI20", "202001-U"),
    "202003": ("SP20", "202003-U"),
}
SUBJECTS = ("AAAS.010.01", "MATH.003.01", "COSC.001.02")
CONFIDENTIAL = "f00conf"


def enrollment(
    subject: str, term: str, netid: str, role: str, *, confidential: bool = False
) -> dict[str, Any]:
    lms, term_id = TERMS[term]
    crn = 10000 + SUBJECTS.index(subject) * 100 + list(TERMS).index(term)
    section_id = f"{subject}-{term_id}-{crn}"
    graded = role == "student" and term < "202003"
    record: dict[str, Any] = {
        "id": f"{section_id}-{netid}-{role}",
        "is_active": term == "202003",
        "is_in_session": term == "202003",
        "netid": netid,
        "role": role,
        "school_id": "UG",
        "section": {
            "id": section_id,
            "lms_section_id": f"{subject}-{lms}",
            "sis_section_id": f"{subject}-{lms}",
        },
        "term": {
            "id": term_id,
            "lms_term_id": lms,
            "sis_ptrm_code": "U",
            "sis_term_code": term,
        },
        "final_grade": "A" if graded else None,
        "credit_hours_earned": 1 if graded else None,
        "course_assessment": None,
    }
    if confidential:
        record["confidential"] = True
    return record


def student(term: str = "202001", netid: str = "f003stu", subject: str = "MATH.003.01") -> str:
    """The id of a student's enrollment in the extract."""
    crn = 10000 + SUBJECTS.index(subject) * 100 + list(TERMS).index(term)
    return f"{subject}-{term}-U-{crn}-{netid}-student"


def extract() -> list[dict[str, Any]]:
    """4 terms x 3 sections: an instructor and 6 students each (one of them confidential in
    AAAS): 12 x 7 = 84 enrollments, 4 of them hidden without the private scope."""
    records = []
    for term in TERMS:
        for subject in SUBJECTS:
            records.append(
                enrollment(subject, term, f"f{SUBJECTS.index(subject)}inst", "instructor")
            )
            for i in range(6):
                confidential = subject == "AAAS.010.01" and i == 5
                netid = CONFIDENTIAL if confidential else f"f00{i}stu"
                records.append(
                    enrollment(subject, term, netid, "student", confidential=confidential)
                )
    return records


# --- driving the sync and the async client the same way -----------------------------------


async def resolve(value: Any) -> Any:
    """A sync client's value, or an async client's awaited."""
    if inspect.isawaitable(value):
        return await value
    return value


async def collect(
    iterable: Iterable[Any] | AsyncIterator[Any], limit: int | None = None
) -> list[Any]:
    out: list[Any] = []
    if hasattr(iterable, "__anext__"):
        async for item in iterable:  # type: ignore[union-attr]
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
    else:
        for item in iterable:  # type: ignore[union-attr]
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
    return out


async def next_item(iterator: Any) -> Any:
    if hasattr(iterator, "__anext__"):
        return await iterator.__anext__()
    return next(iterator)


async def close(client: Any) -> None:
    """Close the client and its httpx client (also when the test passed its own)."""
    if hasattr(client, "aclose"):
        await client.aclose()
        await client._http.aclose()
    else:
        client.close()
        client._http.close()


def make_client(
    flavor: str, base_url: str, api_key: str, log: RequestLog | None = None, **kwargs: Any
) -> Any:
    from registrar_client import AsyncRegistrar, Registrar

    cls = AsyncRegistrar if flavor == "async" else Registrar
    if log is not None:
        kwargs["http_client"] = log.http_client(flavor)
    return cls(base_url, api_key, **kwargs)


class RequestLog:
    """httpx event hooks that record every request's URL and every response's status."""

    def __init__(self) -> None:
        self.urls: list[Any] = []  # httpx.URL of each request, in order
        self.responses: list[tuple[str, str, int]] = []  # (method, path, status)
        # (method, path, Idempotency-Key) of each request
        self.keys: list[tuple[str, str, str | None]] = []

    def http_client(self, flavor: str) -> Any:
        import httpx

        def on_request(request: httpx.Request) -> None:
            self.urls.append(request.url)
            key = request.headers.get("Idempotency-Key")
            self.keys.append((request.method, request.url.path, key))

        def on_response(response: httpx.Response) -> None:
            r = response.request
            self.responses.append((r.method, r.url.path, response.status_code))

        if flavor == "async":

            async def a_request(request: httpx.Request) -> None:
                on_request(request)

            async def a_response(response: httpx.Response) -> None:
                on_response(response)

            hooks: dict[str, list[Any]] = {"request": [a_request], "response": [a_response]}
            return httpx.AsyncClient(event_hooks=hooks)
        return httpx.Client(event_hooks={"request": [on_request], "response": [on_response]})

    def count(self, path: str, status: int | None = None) -> int:
        return sum(
            1 for _m, p, s in self.responses if p == path and (status is None or s == status)
        )


# --- a scripted HTTP server ----------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (after reading the request)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class ScriptedServer:
    """A real HTTP server on a free port: each path answers from its script, in order (the
    last answer repeats). `/api/jwt` hands out tokens `t1`, `t2`, ... valid for an hour."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []
        self.logins = 0
        self.refuse_tokens: set[str] = set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                owner.seen.append(
                    Seen(self.command, self.path, dict(self.headers), body, time.monotonic())
                )
                if path == "/api/jwt":
                    owner.logins += 1
                    now = int(time.time())
                    answer = Answer(
                        200,
                        {
                            "jwt": f"t{owner.logins}",
                            "payload": {"iat": now, "exp": now + 3600, "sub": "svc"},
                            "accepted_scopes": [],
                        },
                    )
                elif self.headers.get("Authorization", "")[7:] in owner.refuse_tokens:
                    answer = Answer(
                        401, {"title": "Unauthorized", "status": 401, "detail": "expired"}
                    )
                else:
                    script = owner.scripts.get(path) or [Answer(404, {"detail": "no script"})]
                    answer = script.pop(0) if len(script) > 1 else script[0]
                if answer.drop:
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = b"" if answer.body is None else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if data:
                    ctype = (
                        "application/problem+json" if answer.status >= 400 else "application/json"
                    )
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def script(self, path: str, *answers: Answer) -> None:
        self.scripts[path] = list(answers)

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?", 1)[0] == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a proxy that cuts a write's connection after the server answered ----------------------


_PROBLEM = b'{"title":"Service Unavailable","status":503,"detail":"Try again later."}'
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
    b"Retry-After: 1\r\nContent-Length: " + str(len(_PROBLEM)).encode() + b"\r\n\r\n" + _PROBLEM
)


def _discard_body(sock: socket.socket, data: bytes) -> None:
    """Read the rest of a request whose head (and maybe part of its body) is `data`."""
    head, _sep, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _colon, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    missing = length - len(body)
    while missing > 0:
        chunk = sock.recv(missing)
        if not chunk:
            return
        missing -= len(chunk)


class CuttingProxy:
    """Forwards TCP to `upstream`. While `cuts` > 0, the next write request (PATCH, or POST
    under /api/academic) is forwarded, its response read from the server (so the server has
    accepted it) and recorded in `dropped`, and the client's connection closed instead of
    answering: the client sees a connection cut after the server accepted."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.cuts = 0
        # While > 0, the next request starting with one of `unavailable_for` is answered `503`
        # with `Retry-After: 1` here, never reaching the server (which stays unchanged).
        self.unavailable = 0
        self.unavailable_for: tuple[bytes, ...] = (b"PATCH ", b"POST /api/academic")
        self.refused: list[float] = []  # when each 503 was sent (time.monotonic())
        self.dropped: list[bytes] = []
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        state = {"cut": False}

        def client_to_upstream() -> None:
            try:
                while data := client.recv(65536):
                    if data.startswith(self.unavailable_for):
                        with self._lock:
                            refuse = self.unavailable > 0
                            if refuse:
                                self.unavailable -= 1
                                self.refused.append(time.monotonic())
                        if refuse:
                            _discard_body(client, data)
                            client.sendall(UNAVAILABLE)
                            continue
                    if data.startswith((b"PATCH ", b"POST /api/academic")):
                        with self._lock:
                            if self.cuts > 0:
                                self.cuts -= 1
                                state["cut"] = True
                    upstream.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=client_to_upstream, daemon=True).start()
        buffer = b""
        try:
            while data := upstream.recv(65536):
                if state["cut"]:
                    buffer += data
                    if b"\r\n\r\n" in buffer:
                        self.dropped.append(buffer)
                        break
                    continue
                client.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()


def location_of(raw_response: bytes) -> str:
    for line in raw_response.split(b"\r\n"):
        if line.lower().startswith(b"location:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError(f"no Location in {raw_response[:300]!r}")


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
