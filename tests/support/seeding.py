"""Known data, written straight into a (migrated) database: enrollments and their people, terms and
sections; petitions; and a section of n students for the task tests. None of it goes through the
SIS loader, so tests of the loader and tests of everything else stand apart."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import Connection, func, insert, select

from registrar.core.clock import utcnow
from registrar.core.settings import Settings
from registrar.enrollments.models import Enrollment, EnrollmentAudit, Section, Term
from registrar.people.models import Person
from registrar.petitions.models import Petition
from registrar.tasks.models import Task
from tests.support.databases import read, write

# --- a small university, for the read tests ------------------------------------------------------

ENROLLMENTS_LOADED_AT = dt.datetime(2020, 6, 15, 4, 43, 15, tzinfo=dt.UTC)

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


def known_enrollments() -> dict[str, list[dict[str, Any]]]:
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
                        "cache_date": ENROLLMENTS_LOADED_AT,
                    }
                )
    return {
        "people": [
            {"netid": n, "confidential": n in CONFIDENTIAL, "updated_at": ENROLLMENTS_LOADED_AT}
            for n in sorted(people)
        ],
        "terms": TERMS,
        "sections": sections,
        "enrollments": enrollments,
    }


def seed_known_enrollments(settings: Settings) -> list[dict[str, Any]]:
    """Write `known_enrollments()`; the enrollment rows."""
    rows = known_enrollments()

    def seed(connection: Connection) -> None:
        connection.execute(insert(Person), rows["people"])
        connection.execute(insert(Term), rows["terms"])
        connection.execute(insert(Section), rows["sections"])
        connection.execute(insert(Enrollment), rows["enrollments"])

    write(settings, seed)
    return rows["enrollments"]


# --- petitions ----------------------------------------------------------------------------------

PETITIONS_LOADED_AT = dt.datetime(2024, 11, 20, 20, 54, 27, tzinfo=dt.UTC)
# f006s0b is the registrar's staff member (user_netid); f00conf is FERPA-protected.
PETITION_PEOPLE = {
    "f006kdf": False,
    "f006s0b": False,
    "f001abc": False,
    "f002xyz": False,
    "f00conf": True,
}
# The petition representation's keys, in order (the portal's petitions GET page).
PETITION_KEYS = [
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
CONFIDENTIAL_PETITIONER = "f00conf"


def build_petitions() -> list[dict[str, Any]]:
    """Four petitions for each of f001abc, f002xyz and the confidential f00conf: 12 in all."""
    rows = []
    n = 0
    for netid in ("f001abc", "f002xyz", CONFIDENTIAL_PETITIONER):
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
                    "effective_date": PETITIONS_LOADED_AT + dt.timedelta(days=n),
                    "cache_date": PETITIONS_LOADED_AT,
                    "created_by_task": None,
                }
            )
    return rows


def seed_petitions(settings: Settings) -> list[dict[str, Any]]:
    """The petition people and `build_petitions()`; the petition rows."""
    rows = build_petitions()
    people = [
        {"netid": n, "confidential": c, "updated_at": PETITIONS_LOADED_AT}
        for n, c in PETITION_PEOPLE.items()
    ]

    def seed(connection: Connection) -> None:
        connection.execute(insert(Person), people)
        connection.execute(insert(Petition), rows)

    write(settings, seed)
    return rows


# --- a section of students, for the task tests --------------------------------------------------


def seed_enrollments(settings: Settings, n: int, *, confidential: bool = False) -> list[str]:
    """Insert `n` enrollments (one section, n students) and return their ids."""
    tag = secrets.token_hex(3)
    section_id = f"AAAS.010.01-202001-U-{tag}"
    term_id = f"202001-{tag}"
    netids = [f"f{tag}{i:04d}" for i in range(n)]
    ids = [f"{section_id}-{netid}-student" for netid in netids]

    def seed(connection: Connection) -> None:
        connection.execute(
            insert(Term).values(
                id=term_id, lms_term_id="1", sis_ptrm_code="1", sis_term_code="202001"
            )
        )
        connection.execute(
            insert(Section).values(id=section_id, lms_section_id="1", sis_section_id="1")
        )
        connection.execute(
            insert(Person),
            [
                {"netid": netid, "confidential": confidential, "updated_at": utcnow()}
                for netid in netids
            ],
        )
        connection.execute(
            insert(Enrollment),
            [
                {
                    "id": eid,
                    "netid": netid,
                    "role": "student",
                    "school_id": "UG",
                    "section_id": section_id,
                    "term_id": term_id,
                    "is_active": True,
                    "is_in_session": True,
                    "cache_date": utcnow(),
                }
                for eid, netid in zip(ids, netids, strict=True)
            ],
        )

    write(settings, seed)
    return ids


def enrollment_columns(settings: Settings, eid: str) -> tuple[Any, Any]:
    """(course_submit_date, course_opt_out_date) of one enrollment."""

    def get(connection: Connection) -> tuple[Any, Any]:
        row = connection.execute(
            select(Enrollment.course_submit_date, Enrollment.course_opt_out_date).where(
                Enrollment.id == eid
            )
        ).one()
        return row[0], row[1]

    return read(settings, get)


def audit_count(
    settings: Settings, *, task_ids: list[str] | None = None, enrollment_id: str | None = None
) -> int:
    stmt = select(func.count()).select_from(EnrollmentAudit)
    if task_ids is not None:
        stmt = stmt.where(EnrollmentAudit.task_id.in_(task_ids))
    if enrollment_id is not None:
        stmt = stmt.where(EnrollmentAudit.enrollment_id == enrollment_id)
    return read(settings, lambda connection: int(connection.scalar(stmt) or 0))


def task_row(settings: Settings, task_id: str) -> Any:
    """The task's row (its columns as attributes), or None."""
    return read(
        settings,
        lambda connection: connection.execute(
            select(Task.__table__).where(Task.id == task_id)
        ).first(),
    )
