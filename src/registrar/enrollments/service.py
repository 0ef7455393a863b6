"""Enrollment reads: the representation the caller's scopes allow, and the caller's collection."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import Row

from registrar.auth.client import Client
from registrar.auth.scopes import ENROLLMENTS_READ_SENSITIVE
from registrar.core.clock import UTC_DATETIME, iso_z, parse_utc
from registrar.core.problems import not_found
from registrar.core.text import shorten, usable_id
from registrar.db.base import width
from registrar.db.database import Database
from registrar.enrollments import repository
from registrar.enrollments.models import Enrollment
from registrar.enrollments.schemas import ASSESSMENT_KEYS
from registrar.paging.pages import Page, PageQuery, find_page

# The task that applies a PATCH (enrollments/jobs.py): its resource, its answer.
RESOURCE = "academic.enrollments"
SUCCESS_MESSAGE = "Enrollment updated successfully."
MAX_ERRORS = 20
MAX_ID_LENGTH = width(Enrollment.id)


# The representation's top-level keys (seed 002): those every reader sees, and those only a reader
# with read.sensitive sees (absent, not null, for the others).
PUBLIC_KEYS = (
    "cache_date",
    "id",
    "is_active",
    "is_in_session",
    "netid",
    "role",
    "school_id",
    "section",
    "term",
)
SENSITIVE_KEYS = ("final_grade", "credit_hours_earned", "course_assessment")


def number(value: float | None) -> float | int | None:
    """A number as seed 002 writes it: no stray `.0` on a whole one."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


# The row's columns in the order `represent` unpacks them (checked against the repository's at
# import): unpacking a row is one C call, where 19 attribute lookups on a SQLAlchemy Row cost
# more than the rest of the representation (measured: 40 us of 99 per row, with iso_z another 18).
_COLUMNS = [
    "pk",
    "id",
    "netid",
    "role",
    "school_id",
    "section_id",
    "term_id",
    "is_active",
    "is_in_session",
    "final_grade",
    "credit_hours_earned",
    "course_submit_date",
    "course_opt_out_date",
    "cache_date",
    "confirmed_at",
    "lms_section_id",
    "sis_section_id",
    "lms_term_id",
    "sis_ptrm_code",
    "sis_term_code",
]
if tuple(_COLUMNS) != repository.ROW_FIELDS:
    raise RuntimeError("enrollments: represent() and the repository's row columns disagree")
_WIDTH = len(_COLUMNS)

# A page's rows share a few timestamps (a load stamps its cache_date on every row it writes).
_iso = functools.lru_cache(maxsize=1024)(iso_z)


def represent(row: Row[Any] | tuple[Any, ...], *, sensitive: bool) -> dict[str, Any]:
    """Seed 002's shape; the sensitive keys are absent, not null, without the scope."""
    (
        _pk,
        id_,
        netid,
        role,
        school_id,
        section_id,
        term_id,
        is_active,
        is_in_session,
        final_grade,
        credit_hours_earned,
        submit_date,
        opt_out_date,
        cache_date,
        confirmed_at,
        lms_section_id,
        sis_section_id,
        lms_term_id,
        sis_ptrm_code,
        sis_term_code,
    ) = tuple(row)[:_WIDTH]
    # When the SIS last confirmed it: the later of the row's column and the newest complete load.
    out: dict[str, Any] = {"cache_date": _iso(repository.later(cache_date, confirmed_at))}
    if sensitive:
        out["final_grade"] = final_grade
        out["credit_hours_earned"] = number(credit_hours_earned)
        if submit_date is None and opt_out_date is None:
            out["course_assessment"] = None
        else:
            out["course_assessment"] = {
                "submit_date": iso_z(submit_date),
                "opt_out_date": iso_z(opt_out_date),
            }
    out["id"] = id_
    out["is_active"] = is_active
    out["is_in_session"] = is_in_session
    out["netid"] = netid
    out["role"] = role
    out["school_id"] = school_id
    out["section"] = {
        "id": section_id,
        "lms_section_id": lms_section_id,
        "sis_section_id": sis_section_id,
    }
    out["term"] = {
        "id": term_id,
        "lms_term_id": lms_term_id,
        "sis_ptrm_code": sis_ptrm_code,
        "sis_term_code": sis_term_code,
    }
    return out


async def get_enrollment(db: Database, enrollment_id: str, client: Client) -> dict[str, Any]:
    found = await _visible(db, enrollment_id, client)
    if found is None:
        raise not_found("enrollment")
    return represent(found, sensitive=client.has(ENROLLMENTS_READ_SENSITIVE))


async def _visible(db: Database, enrollment_id: str, client: Client) -> Row[Any] | None:
    """The enrollment if this caller may see it (GET and PATCH ask the same question)."""
    if not usable_id(enrollment_id, MAX_ID_LENGTH):
        return None
    return await db.read_cached(repository.visible_enrollment, enrollment_id, client.sees_private)


async def list_enrollments(
    db: Database, client: Client, query: PageQuery
) -> tuple[list[dict[str, Any]], Page]:
    rows = repository.enrollment_rows()
    page = await find_page(db, repository.collection_spec(), client, query, rows=rows)
    sensitive = client.has(ENROLLMENTS_READ_SENSITIVE)
    return [represent(r, sensitive=sensitive) for r in page.rows], page


async def check_visible(db: Database, enrollment_id: str, client: Client) -> None:
    """404 unless the enrollment exists for this caller (a PATCH's first check)."""
    if await _visible(db, enrollment_id, client) is None:
        raise not_found("enrollment")


def _parse_date(key: str, value: Any, errors: list[str]) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not UTC_DATETIME.fullmatch(value):
        errors.append(
            f"course_assessment.{key} must be null or an ISO 8601 UTC date-time "
            "like 2020-03-05T17:53:46Z."
        )
        return None
    try:
        return parse_utc(value)
    except ValueError:
        errors.append(f"course_assessment.{key} is not a valid date-time.")
        return None


def validate_payload(body: Any) -> tuple[dict[str, Any], list[str]]:
    """A PATCH body, as the route and again the task check it (a task may outlive the code that
    queued it): the normalized payload and every problem found (empty when valid)."""
    if not isinstance(body, dict):
        return {}, ["The payload must be a JSON object with a course_assessment attribute."]
    errors: list[str] = []
    errors += [f"Unknown attribute: {shorten(str(k))}." for k in body if k != "course_assessment"]
    if "course_assessment" not in body:
        errors.append("Missing attribute: course_assessment.")
        return {}, errors[:MAX_ERRORS]
    ca = body["course_assessment"]
    if not isinstance(ca, dict):
        errors.append("course_assessment must be an object with submit_date and opt_out_date.")
        return {}, errors[:MAX_ERRORS]
    errors += [
        f"Unknown attribute: course_assessment.{shorten(str(k))}."
        for k in ca
        if k not in ASSESSMENT_KEYS
    ]
    errors += [f"Missing attribute: course_assessment.{k}." for k in ASSESSMENT_KEYS if k not in ca]
    dates = {k: _parse_date(k, ca.get(k), errors) for k in ASSESSMENT_KEYS}
    if ca.get("submit_date") is not None and ca.get("opt_out_date") is not None:
        errors.append("Payload is invalid, contains values for both submit_date and opt_out_date.")
    # To the second, in the seed's form: what the task payload shows is what is stored and read.
    normalized = {"course_assessment": {k: iso_z(v) for k, v in dates.items()}}
    return normalized, errors[:MAX_ERRORS]


def assessment(submit: dt.datetime | None, opt_out: dt.datetime | None) -> dict[str, Any] | None:
    """course_assessment as the PATCH body writes it (the audit's before and after)."""
    if submit is None and opt_out is None:
        return None
    return {
        "submit_date": iso_z(submit),
        "opt_out_date": iso_z(opt_out),
    }
