"""A webhook receiver for tests (and the webhook bench): a local HTTP server that records every
POST (path, headers, raw body, when) and answers as each path is told to: a status, a list of
statuses in turn, or a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1  # answer nothing for `hang_seconds`


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    # path -> statuses to answer in turn (the last one repeats); default 200.
    plans: dict[str, list[int]] = field(default_factory=dict)
    hang_seconds: float = 5.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *statuses: int) -> str:
        """Make `path` answer these statuses in turn; its URL."""
        with self.lock:
            self.plans[path] = list(statuses)
        return self.url(path)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.at(path)
            if len(got) >= count:
                return got
            assert time.monotonic() < deadline, f"{path}: {len(got)} of {count} deliveries"
            time.sleep(0.02)

    def _status(self, path: str) -> int:
        with self.lock:
            plan = self.plans.get(path)
            if not plan:
                return 200
            return plan.pop(0) if len(plan) > 1 else plan[0]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 drops connections when deliveries come at once
    daemon_threads = True


@contextmanager
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Receiver(port=int(server.server_address[1]))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            record = Received(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
            )
            with state.lock:
                state.received.append(record)
            status = state._status(self.path)
            if status == HANG:
                time.sleep(state.hang_seconds)
                status = 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            if 300 <= status < 400:
                self.send_header("Location", state.url("/redirected"))
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
