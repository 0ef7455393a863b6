"""People and petitions written straight to the database, and a task poller."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.people.models import Person
from registrar.petitions.models import Petition

T = TypeVar("T")

LOADED_AT = dt.datetime(2024, 11, 20, 20, 54, 27, tzinfo=dt.UTC)
# f006s0b is the registrar's staff member (user_netid); f00conf is FERPA-protected.
PEOPLE = {"f006kdf": False, "f006s0b": False, "f001abc": False, "f002xyz": False, "f00conf": True}
CONFIDENTIAL = "f00conf"
# The petition representation's keys, in order (the portal's petitions GET page).
KEYS = [
    "id",
    "netid",
    "petition_code",
    "petition_name",
    "origin_code",
    "origin_name",
    "school",
    "decision",
    "grade_term",
    "effective_date",
    "cache_date",
]
CODES = ["Q14", "Q24", "Q25", "Q41"]


def run_db(settings: Settings, fn: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run `fn(runtime)` on a fresh loop and engine (the app's loop lives in another thread)."""

    async def _main() -> T:
        runtime = Runtime.build(settings)
        try:
            return await fn(runtime)
        finally:
            await runtime.close()

    return asyncio.run(_main())


def build_petitions() -> list[dict[str, Any]]:
    """Four petitions for each of f001abc, f002xyz and the confidential f00conf: 12 in all."""
    rows = []
    n = 0
    for netid in ("f001abc", "f002xyz", CONFIDENTIAL):
        for i, code in enumerate(CODES):
            n += 1
            rows.append(
                {
                    "id": f"{n:024x}",
                    "netid": netid,
                    "petition_code": code,
                    "origin_code": "UREG" if i % 2 == 0 else "UDEAN",
                    "school": "UG",
                    "decision": None if i == 3 else f"IDP {n:03d}",
                    "grade_term": ["23F", "24W", "24S", "24W=L"][i],
                    "user_netid": "f006s0b",
                    "effective_date": LOADED_AT + dt.timedelta(days=n),
                    "cache_date": LOADED_AT,
                    "created_by_task": None,
                }
            )
    return rows


async def _seed(runtime: Runtime, petitions: list[dict[str, Any]]) -> None:
    async with runtime.db.writing() as session:
        await session.execute(
            insert(Person),
            [{"netid": n, "confidential": c, "updated_at": LOADED_AT} for n, c in PEOPLE.items()],
        )
        await session.execute(insert(Petition), petitions)


@pytest.fixture(scope="module")
def petitions(api: TestClient, settings: Settings) -> list[dict[str, Any]]:
    """Seeds the module's database (after the app migrated it); returns the petition rows."""
    rows = build_petitions()

    async def seed(runtime: Runtime) -> None:
        await _seed(runtime, rows)

    run_db(settings, seed)
    return rows


def wait_task(
    api: TestClient, location: str, headers: dict[str, str], timeout: float = 15.0
) -> dict[str, Any]:
    """Poll a task as a client would, until it is no longer `accepted`."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(location, headers=headers)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        if task["status"] != "accepted":
            return task
        assert time.monotonic() < deadline, f"task still accepted: {task}"
        time.sleep(0.02)
