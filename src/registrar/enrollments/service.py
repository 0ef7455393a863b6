"""Enrollment reads: the representation the caller's scopes allow, and the caller's collection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from starlette.datastructures import URL

from registrar.auth.scopes import ENROLLMENTS_READ_SENSITIVE
from registrar.auth.tokens import Client
from registrar.core.clock import iso_z, number
from registrar.core.problems import not_found
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.enrollments import repository
from registrar.paging.pages import Page, find_page

MAX_ID_LENGTH = 256


def represent(row: Row[Any], *, sensitive: bool) -> dict[str, Any]:
    """Seed 002's shape; the sensitive keys are absent, not null, without the scope."""
    out: dict[str, Any] = {"cache_date": iso_z(row.cache_date)}
    if sensitive:
        out["final_grade"] = row.final_grade
        out["credit_hours_earned"] = number(row.credit_hours_earned)
        if row.course_submit_date is None and row.course_opt_out_date is None:
            out["course_assessment"] = None
        else:
            out["course_assessment"] = {
                "submit_date": iso_z(row.course_submit_date),
                "opt_out_date": iso_z(row.course_opt_out_date),
            }
    out.update(
        id=row.id,
        is_active=row.is_active,
        is_in_session=row.is_in_session,
        netid=row.netid,
        role=row.role,
        school_id=row.school_id,
        section={
            "id": row.section_id,
            "lms_section_id": row.lms_section_id,
            "sis_section_id": row.sis_section_id,
        },
        term={
            "id": row.term_id,
            "lms_term_id": row.lms_term_id,
            "sis_ptrm_code": row.sis_ptrm_code,
            "sis_term_code": row.sis_term_code,
        },
    )
    return out


async def get_enrollment(db: Database, enrollment_id: str, client: Client) -> dict[str, Any]:
    found = None
    if len(enrollment_id) <= MAX_ID_LENGTH and "\x00" not in enrollment_id:
        found = await db.read_cached(
            repository.visible_enrollment, enrollment_id, client.sees_private
        )
    if found is None:
        raise not_found("enrollment")
    return represent(found, sensitive=client.has(ENROLLMENTS_READ_SENSITIVE))


async def list_enrollments(
    db: Database,
    client: Client,
    params: Sequence[tuple[str, str]],
    *,
    settings: Settings,
    secret: bytes,
    url: URL,
) -> tuple[list[dict[str, Any]], Page]:
    page = await find_page(
        db,
        repository.collection_spec(),
        client,
        params,
        rows=repository.enrollment_rows(),
        settings=settings,
        secret=secret,
        url=url,
    )
    sensitive = client.has(ENROLLMENTS_READ_SENSITIVE)
    return [represent(r, sensitive=sensitive) for r in page.rows], page
