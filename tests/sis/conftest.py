"""Helpers for the SIS load tests: extract lines, files, and a look straight into the database."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from registrar.core.runtime import Runtime
from tests.conftest import make_settings, new_database_url

SECTION = {
    "id": "AAAS.010.01-202001-U-10188",
    "lms_section_id": "AAAS.010.01-WI20",
    "sis_section_id": "AAAS.010.01-WI20",
}
TERM = {"id": "202001-U", "lms_term_id": "WI20", "sis_ptrm_code": "U", "sis_term_code": "202001"}


def line(netid: str, role: str = "student", **overrides: Any) -> dict[str, Any]:
    """One extract line in the seed's representation (sensitive keys included)."""
    section = copy.deepcopy(overrides.pop("section", SECTION))
    record: dict[str, Any] = {
        "cache_date": "2020-06-15T04:43:15Z",
        "id": f"{section['id']}-{netid}-{role}",
        "is_active": False,
        "is_in_session": False,
        "netid": netid,
        "role": role,
        "school_id": "UG",
        "section": section,
        "term": copy.deepcopy(TERM),
        "final_grade": "A" if role == "student" else None,
        "credit_hours_earned": 1 if role == "student" else None,
        "course_assessment": (
            {"submit_date": "2020-03-05T17:53:46Z", "opt_out_date": None}
            if role == "student"
            else None
        ),
    }
    record.update(overrides)
    return record


def write_extract(path: Path, records: list[Any]) -> Path:
    """Dicts become JSON lines; bytes and str are written as they are (for bad lines)."""
    chunks = []
    for record in records:
        if isinstance(record, bytes):
            chunks.append(record)
        elif isinstance(record, str):
            chunks.append(record.encode())
        else:
            chunks.append(orjson.dumps(record))
    path.write_bytes(b"\n".join(chunks) + b"\n")
    return path


async def _snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    runtime = Runtime.build(make_settings(database_url))
    try:
        async with runtime.db.reading() as session:
            tables = {
                "enrollments": "SELECT * FROM enrollments ORDER BY pk",
                "people": "SELECT netid, confidential FROM people ORDER BY netid",
                "sections": "SELECT * FROM sections ORDER BY id",
                "terms": "SELECT * FROM terms ORDER BY id",
                "enrollment_audit": "SELECT pk, enrollment_id FROM enrollment_audit ORDER BY pk",
            }
            return {
                name: [tuple(row) for row in (await session.execute(text(sql))).all()]
                for name, sql in tables.items()
            }
    finally:
        await runtime.close()


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the load touches, to compare before and after a failed load."""
    return asyncio.run(_snapshot(database_url))


async def _execute(database_url: str, sql: str, params: dict[str, Any]) -> list[Any]:
    runtime = Runtime.build(make_settings(database_url))
    try:
        async with runtime.db.writing() as session:
            result = await session.execute(text(sql), params)
            return [tuple(r) for r in result.all()] if result.returns_rows else []  # type: ignore[attr-defined]
    finally:
        await runtime.close()


def execute(database_url: str, sql: str, **params: Any) -> list[Any]:
    return asyncio.run(_execute(database_url, sql, params))


def enrollments(database_url: str) -> dict[str, dict[str, Any]]:
    """Enrollments by id, as dicts of their columns."""

    async def _rows() -> dict[str, dict[str, Any]]:
        runtime = Runtime.build(make_settings(database_url))
        try:
            async with runtime.db.reading() as session:
                result = await session.execute(text("SELECT * FROM enrollments"))
                return {row["id"]: dict(row) for row in result.mappings().all()}
        finally:
            await runtime.close()

    return asyncio.run(_rows())


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[str]:
    """A database of the test's own, so each load test starts from nothing."""
    url, drop = new_database_url(tmp_path)
    yield url
    drop()
