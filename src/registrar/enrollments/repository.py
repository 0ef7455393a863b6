"""Enrollment queries. Every read applies the FERPA rule (common/ferpa.py) through `visible_to`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, bindparam, select

from registrar.auth.tokens import Client
from registrar.enrollments.filters import FIELDS
from registrar.enrollments.models import Enrollment, Section, Term
from registrar.paging.pages import CollectionSpec
from registrar.people import ferpa


def visible_to(client: Client) -> list[ColumnElement[bool]]:
    """Conditions that hide enrollments of confidential people (the FERPA rule, common/ferpa.py)."""
    return ferpa.visible_to(client, Enrollment.netid)


def hidden_from(client: Client) -> ColumnElement[bool] | None:
    return ferpa.hidden_from(client, Enrollment.netid)


# Plain columns, not ORM objects: a page builds a hundred rows, and entity loading would cost more
# than the query. The names are unique across the three tables, so rows read as `row.netid`.
_ROW_COLUMNS = (
    Enrollment.pk,
    Enrollment.id,
    Enrollment.netid,
    Enrollment.role,
    Enrollment.school_id,
    Enrollment.section_id,
    Enrollment.term_id,
    Enrollment.is_active,
    Enrollment.is_in_session,
    Enrollment.final_grade,
    Enrollment.credit_hours_earned,
    Enrollment.course_submit_date,
    Enrollment.course_opt_out_date,
    Enrollment.cache_date,
    Section.lms_section_id,
    Section.sis_section_id,
    Term.lms_term_id,
    Term.sis_ptrm_code,
    Term.sis_term_code,
)


def enrollment_rows() -> Select[Any]:
    """An enrollment with its section's and term's attributes: the representation, one query."""
    return (
        select(*_ROW_COLUMNS)
        .join(Section, Section.id == Enrollment.section_id)
        .join(Term, Term.id == Enrollment.term_id)
    )


def visible_with(sees_private: bool) -> list[ColumnElement[bool]]:
    """`visible_to` for statements built once, ahead of any caller: by the private scope alone."""
    return ferpa.visible_with(sees_private, Enrollment.netid)


def _by_id(sees_private: bool) -> Select[Any]:
    return enrollment_rows().where(
        Enrollment.id == bindparam("enrollment_id"), *visible_with(sees_private)
    )


# Built once: the hottest query of the API skips statement construction and cache-key work.
_BY_ID = {True: _by_id(True), False: _by_id(False)}


def visible_enrollment(
    connection: Connection, enrollment_id: str, sees_private: bool
) -> Row[Any] | None:
    """The enrollment with this id if it exists and the caller may see it; else None (→ 404).

    A read for `Database.read`: it runs on a plain connection.
    """
    return connection.execute(_BY_ID[sees_private], {"enrollment_id": enrollment_id}).first()


def collection_spec() -> CollectionSpec:
    return CollectionSpec(
        resource="enrollments",
        key=Enrollment.pk,
        table=Enrollment,
        fields=FIELDS,
        visibility=visible_to,
        hidden=hidden_from,
    )
