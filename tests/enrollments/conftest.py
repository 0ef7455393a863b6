"""A small, known set of enrollments, written straight to the database."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import insert

from registrar.core.settings import Settings
from registrar.db.engine import create_database
from registrar.enrollments.models import Enrollment, Section, Term
from registrar.people.models import Person

LOADED_AT = dt.datetime(2020, 6, 15, 4, 43, 15, tzinfo=dt.UTC)

TERMS = [
    {"id": "201909-U", "lms_term_id": "FA19", "sis_ptrm_code": "U", "sis_term_code": "201909"},
    {"id": "202001-U", "lms_term_id": "WI20", "sis_ptrm_code": "U", "sis_term_code": "202001"},
    {"id": "202003-U", "lms_term_id": "SP20", "sis_ptrm_code": "U", "sis_term_code": "202003"},
]
CONFIDENTIAL = {"f00conf"}


def _section(subject: str, term: dict[str, str], crn: int) -> dict[str, str]:
    return {
        "id": f"{subject}.010.01-{term['id']}-{crn}",
        "lms_section_id": f"{subject}.010.01-{term['lms_term_id']}",
        "sis_section_id": f"{subject}.010.01-{term['lms_term_id']}",
    }


def build_rows() -> dict[str, list[dict[str, Any]]]:
    sections, enrollments = [], []
    people = {"f002nkd", "f001nkx", "f00conf", "f003abc", "f004pct%_x"}
    crn = 10188
    for term in TERMS:
        for subject in ("AAAS", "COSC", "MATH"):
            sec = _section(subject, term, crn)
            crn += 1
            sections.append(sec)
            members = [
                ("f002nkd", "instructor"),
                ("f001nkx", "student"),
                ("f00conf", "student"),
                ("f003abc", "student"),
            ]
            if subject == "MATH" and term["id"] == "202003-U":
                members.append(("f004pct%_x", "student"))
            for netid, role in members:
                past = term["sis_term_code"] < "202003"
                grade = (
                    None
                    if role == "instructor" or not past
                    else ("A" if netid == "f001nkx" else "B+")
                )
                enrollments.append(
                    {
                        "id": f"{sec['id']}-{netid}-{role}",
                        "netid": netid,
                        "role": role,
                        "school_id": "UG",
                        "section_id": sec["id"],
                        "term_id": term["id"],
                        "is_active": not past,
                        "is_in_session": not past,
                        "final_grade": grade,
                        "credit_hours_earned": (1.0 if grade else None),
                        "course_submit_date": (
                            dt.datetime(2020, 3, 5, 17, 53, 46, tzinfo=dt.UTC)
                            if netid == "f001nkx" and subject == "AAAS"
                            else None
                        ),
                        "course_opt_out_date": None,
                        "cache_date": LOADED_AT,
                    }
                )
    return {
        "people": [
            {"netid": n, "confidential": n in CONFIDENTIAL, "updated_at": LOADED_AT}
            for n in sorted(people)
        ],
        "terms": TERMS,
        "sections": sections,
        "enrollments": enrollments,
    }


async def _seed(settings: Settings, rows: dict[str, list[dict[str, Any]]]) -> None:
    db = create_database(settings)
    try:
        async with db.writing() as session:
            await session.execute(insert(Person), rows["people"])
            await session.execute(insert(Term), rows["terms"])
            await session.execute(insert(Section), rows["sections"])
            await session.execute(insert(Enrollment), rows["enrollments"])
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def enrollments(api: Any, settings: Settings) -> list[dict[str, Any]]:
    """Seeds the module's database (after the app migrated it); returns the enrollment rows."""
    rows = build_rows()
    asyncio.run(_seed(settings, rows))
    return rows["enrollments"]
