"""Test data for the task tests: enrollments inserted straight into the database.

(The SIS loader is written elsewhere; these tests must not depend on it.)
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import func, select

from registrar.core.clock import utcnow
from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.enrollments.models import Enrollment, EnrollmentAudit, Section, Term
from registrar.people.models import Person
from registrar.tasks.models import Task

T = TypeVar("T")

WRITE = "api:academic:enrollments:write"
PRIVATE = "urn:dartmouth:people:private"
JSON = {"Content-Type": "application/json"}


def run_db(settings: Settings, fn: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run `fn(runtime)` on a fresh loop and engine (the app's own loop lives in another thread)."""

    async def _main() -> T:
        runtime = Runtime.build(settings)
        try:
            return await fn(runtime)
        finally:
            await runtime.close()

    return asyncio.run(_main())


def seed_enrollments(settings: Settings, n: int, *, confidential: bool = False) -> list[str]:
    """Insert `n` enrollments (one section, n students) and return their ids."""
    tag = secrets.token_hex(3)
    section_id = f"AAAS.010.01-202001-U-{tag}"

    async def _seed(runtime: Runtime) -> list[str]:
        ids = []
        async with runtime.db.writing() as session:
            session.add(
                Term(id=f"202001-{tag}", lms_term_id="1", sis_ptrm_code="1", sis_term_code="202001")
            )
            session.add(Section(id=section_id, lms_section_id="1", sis_section_id="1"))
            await session.flush()
            netids = [f"f{tag}{i:04d}" for i in range(n)]
            session.add_all([Person(netid=netid, confidential=confidential) for netid in netids])
            await session.flush()  # no ORM relationship orders these inserts: flush people first
            for netid in netids:
                eid = f"{section_id}-{netid}-student"
                ids.append(eid)
                session.add(
                    Enrollment(
                        id=eid,
                        netid=netid,
                        role="student",
                        school_id="UG",
                        section_id=section_id,
                        term_id=f"202001-{tag}",
                        is_active=True,
                        is_in_session=True,
                        cache_date=utcnow(),
                    )
                )
        return ids

    return run_db(settings, _seed)


def enrollment_columns(settings: Settings, eid: str) -> tuple[Any, Any]:
    async def _get(runtime: Runtime) -> tuple[Any, Any]:
        async with runtime.db.reading() as session:
            e = (await session.scalars(select(Enrollment).where(Enrollment.id == eid))).one()
            return e.course_submit_date, e.course_opt_out_date

    return run_db(settings, _get)


def audit_count(
    settings: Settings, *, task_ids: list[str] | None = None, enrollment_id: str | None = None
) -> int:
    async def _count(runtime: Runtime) -> int:
        stmt = select(func.count()).select_from(EnrollmentAudit)
        if task_ids is not None:
            stmt = stmt.where(EnrollmentAudit.task_id.in_(task_ids))
        if enrollment_id is not None:
            stmt = stmt.where(EnrollmentAudit.enrollment_id == enrollment_id)
        async with runtime.db.reading() as session:
            return int(await session.scalar(stmt) or 0)

    return run_db(settings, _count)


def get_task_row(settings: Settings, task_id: str) -> Task | None:
    async def _get(runtime: Runtime) -> Task | None:
        async with runtime.db.reading() as session:
            return await session.get(Task, task_id)

    return run_db(settings, _get)


def body(submit: str | None = None, opt_out: str | None = None) -> dict[str, Any]:
    return {"course_assessment": {"submit_date": submit, "opt_out_date": opt_out}}


def wait_task(api: Any, location: str, headers: dict[str, str], timeout: float = 15.0) -> Any:
    """Poll a task (as a client would) until it is no longer accepted; return the final body."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        response = api.get(location, headers=headers)
        assert response.status_code == 200, response.text
        task = response.json()
        if task["status"] != "accepted":
            return task
        assert time.monotonic() < deadline, f"task still accepted: {task}"
        time.sleep(0.02)
