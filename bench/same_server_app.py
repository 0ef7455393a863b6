"""The same server as `registrar serve` (every middleware, the token check, the scope check)
answering a constant enrollment: what the API costs before it touches the database.

    uvicorn --app-dir bench --factory same_server_app:create_app
"""

from __future__ import annotations

from typing import Any

from ceiling_app import ENROLLMENT
from fastapi import FastAPI

from registrar.app import create_app as create_registrar_app
from registrar.enrollments.router import Reader
from registrar.http.responses import FastJSON


def create_app() -> FastAPI:
    app = create_registrar_app(run_worker=False)

    @app.get("/bench/constant/{enrollment_id}")
    async def constant(enrollment_id: str, client: Reader) -> Any:
        return FastJSON(ENROLLMENT)

    return app
