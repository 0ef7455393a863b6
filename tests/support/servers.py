"""Servers for tests: the app in a uvicorn thread of this process (`real_server`), and `registrar`
itself as a subprocess (`Proc`, `serve`), for what only a real process shows (SIGKILL, SIGTERM,
several processes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from registrar.app import create_app
from tests.support.databases import make_settings

BIN = Path(sys.executable).parent / "registrar"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        proxy_headers=False,  # as `registrar serve`: the app's REGISTRAR_TRUSTED_PROXIES rule
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


def command(*args: str) -> list[str]:
    """The `registrar` command line (the installed script, else `python -m registrar`)."""
    if BIN.exists():
        return [str(BIN), *args]
    return [sys.executable, "-m", "registrar", *args]


class Proc:
    def __init__(
        self, database_url: str, *args: str, log_file: Path | None = None, **env: str
    ) -> None:
        full_env = {
            **os.environ,
            "REGISTRAR_DATABASE_URL": database_url,
            "REGISTRAR_TASK_LEASE_SECONDS": "2",  # reclaim a killed worker's tasks quickly
            "REGISTRAR_WORKER_POLL_SECONDS": "0.2",
            "REGISTRAR_LOG_JSON": "false",
            "REGISTRAR_LOG_LEVEL": "WARNING",
            **env,
        }
        # A long-running process logs to a file: a pipe nobody reads fills and blocks it.
        self.log_file = log_file
        err = subprocess.PIPE if log_file is None else log_file.open("ab")
        self.proc = subprocess.Popen(
            command(*args), env=full_env, stdout=subprocess.DEVNULL, stderr=err
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, *, uvicorn: bool = True) -> int:
        """SIGTERM; the exit status, with uvicorn's re-raised SIGTERM after a clean exit as 0."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
        assert "Traceback" not in stderr, stderr
        # uvicorn >= 0.29 shuts down gracefully, then re-raises the signal it caught.
        return 0 if uvicorn and code == -signal.SIGTERM else code

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def serve(
    database_url: str, port: int, *extra: str, log_file: Path | None = None, **env: str
) -> Proc:
    p = Proc(database_url, "serve", "--port", str(port), *extra, log_file=log_file, **env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert p.proc.poll() is None, p.proc.stderr.read().decode() if p.proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return p
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    p.ensure_dead()
    raise AssertionError("server did not start")


def login(base: str, key: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/jwt", headers={"Authorization": key}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['jwt']}"}
