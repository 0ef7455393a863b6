"""SIS extracts for the load tests: lines in the seed's representation, files of them, and what the
load left in the database."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, text

from tests.support.databases import make_settings, read, write

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


TABLES = {
    "enrollments": "SELECT * FROM enrollments ORDER BY pk",
    "people": "SELECT netid, confidential FROM people ORDER BY netid",
    "sections": "SELECT * FROM sections ORDER BY id",
    "terms": "SELECT * FROM terms ORDER BY id",
    "enrollment_audit": "SELECT pk, enrollment_id FROM enrollment_audit ORDER BY pk",
}


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the load touches, to compare before and after a failed load."""

    def rows(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
        return {
            name: [tuple(row) for row in connection.execute(text(sql)).all()]
            for name, sql in TABLES.items()
        }

    return read(make_settings(database_url), rows)


def enrollments(database_url: str) -> dict[str, dict[str, Any]]:
    """Enrollments by id, as dicts of their columns."""

    def rows(connection: Connection) -> dict[str, dict[str, Any]]:
        result = connection.execute(text("SELECT * FROM enrollments"))
        return {row["id"]: dict(row) for row in result.mappings().all()}

    return read(make_settings(database_url), rows)


def execute(database_url: str, sql: str, **params: Any) -> list[Any]:
    """Raw SQL in a transaction of its own; its rows as tuples (none for DML)."""

    def run(connection: Connection) -> list[Any]:
        result = connection.execute(text(sql), params)
        return [tuple(r) for r in result.all()] if result.returns_rows else []

    return write(make_settings(database_url), run)
