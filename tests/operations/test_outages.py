"""The database goes away and comes back (PostgreSQL, through a TCP proxy): 503 with Retry-After,
nothing accepted that could be lost, recovery without a restart; and a late database at start."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.auth.scopes import ALL_SCOPES
from tests.support.accounts import Accounts
from tests.support.databases import POSTGRES_ADMIN_URL, make_settings
from tests.support.servers import free_port

ENROLLMENTS = "/api/academic/enrollments"
PETITIONS = "/api/academic/petitions"


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
