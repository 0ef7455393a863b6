"""`registrar serve`: the API (uvicorn), with an in-process task worker unless --no-worker."""

from __future__ import annotations

import os
import socket
from typing import Annotated

import typer
import uvicorn

from registrar.cli.common import fail, migrate_or_fail, settings
from registrar.core.settings import get_settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run a task worker")
    ] = False,
    processes: Annotated[
        int, typer.Option(help="API processes (PostgreSQL only for more than 1)")
    ] = 1,
) -> None:
    """Serve the API, with an in-process task worker unless --no-worker."""
    s = settings()
    if processes < 1:
        raise fail("--processes must be at least 1")
    _check_port(host, port)
    migrate_or_fail(s)
    if no_worker:
        os.environ["REGISTRAR_RUN_WORKER"] = "false"
    get_settings.cache_clear()
    uvicorn.run(
        "registrar.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_level=s.log_level.lower(),
        access_log=False,
        # X-Forwarded-* are believed only from REGISTRAR_TRUSTED_PROXIES, by the app itself
        # (http/middleware/hosts.py); uvicorn's own rule (trust 127.0.0.1) would apply first.
        proxy_headers=False,
        # Longer than the usual load balancer idle timeout (60 s): the balancer, not us, closes an
        # idle connection, so a request is never sent on a connection we are closing (a PATCH
        # cannot be retried blindly; see Idempotency-Key).
        timeout_keep_alive=65,
        timeout_graceful_shutdown=20,
    )


def _check_port(host: str, port: int) -> None:
    """One clear line for a port already in use, before anything starts (uvicorn would end in
    a traceback-like `[Errno 98]` after start-up)."""
    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        raise fail(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port"
        ) from None
