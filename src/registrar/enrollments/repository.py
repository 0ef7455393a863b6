"""Enrollment queries. Every read applies the FERPA rule (people/ferpa.py) through `visible_to`."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)

from registrar.auth.client import Client
from registrar.enrollments.filters import FIELDS
from registrar.enrollments.models import Enrollment, EnrollmentAudit, Section, Term
from registrar.paging.pages import CollectionSpec
from registrar.people import ferpa


def visible_to(client: Client) -> list[ColumnElement[bool]]:
    """Conditions that hide enrollments of confidential people (the FERPA rule, people/ferpa.py)."""
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


def any_enrollment(connection: Connection) -> bool:
    """Whether any enrollment exists (`registrar demo --if-empty`)."""
    return connection.scalar(select(Enrollment.pk).limit(1)) is not None


# The handler's statements, built once: it runs once per task and is the worker's hot path, and
# building a statement (and its cache key) costs more than running it. Core on the Tables, not
# ORM objects. Keyed by (requester sees private people, PostgreSQL).
_ENROLLMENTS = cast(Table, Enrollment.__table__)
_AUDITS = cast(Table, EnrollmentAudit.__table__)


def _current(private: bool, lock: bool) -> Select[Any]:
    query = select(
        Enrollment.pk, Enrollment.course_submit_date, Enrollment.course_opt_out_date
    ).where(Enrollment.id == bindparam("enrollment_id"), *visible_with(private))
    # PostgreSQL: a row lock, so two tasks on one enrollment record true before/after values in
    # order. (SQLite's write transaction already excludes every other writer.)
    return query.with_for_update(of=Enrollment) if lock else query


_CURRENT = {
    (private, lock): _current(private, lock) for private in (False, True) for lock in (False, True)
}
# Two questions about the tasks applied here so far: was this task one of them (the unique
# task_id), and when was the newest of them requested (the (enrollment_id, requested_at) index)?
# Each is one index probe, however long the enrollment's history.
_APPLIED = select(
    select(func.count())
    .select_from(_AUDITS)
    .where(_AUDITS.c.task_id == bindparam("task_id"))
    .scalar_subquery(),
    select(func.max(_AUDITS.c.requested_at))
    .where(_AUDITS.c.enrollment_id == bindparam("enrollment_id"))
    .scalar_subquery(),
)
_WRITE = (
    update(_ENROLLMENTS)
    .where(_ENROLLMENTS.c.pk == bindparam("enrollment_pk"))
    .values(course_submit_date=bindparam("submit"), course_opt_out_date=bindparam("opt_out"))
)
_AUDIT = insert(_AUDITS)


def current_assessment(
    connection: Connection, enrollment_id: str, *, private: bool
) -> Row[Any] | None:
    """(pk, course_submit_date, course_opt_out_date) of the enrollment if the requester may see it
    (the FERPA rule as the request was decided), locked on PostgreSQL; else None."""
    current = _CURRENT[(private, connection.dialect.name == "postgresql")]
    return connection.execute(current, {"enrollment_id": enrollment_id}).first()


def applied_so_far(connection: Connection, task_id: str, enrollment_id: str) -> tuple[int, Any]:
    """(whether this task's change is already applied, when the newest applied one was
    requested): two index probes in one row."""
    found = connection.execute(_APPLIED, {"task_id": task_id, "enrollment_id": enrollment_id}).one()
    return int(found[0] or 0), found[1]


def write_assessment(
    connection: Connection, pk: int, submit: dt.datetime | None, opt_out: dt.datetime | None
) -> None:
    connection.execute(_WRITE, {"enrollment_pk": pk, "submit": submit, "opt_out": opt_out})


def add_audit(connection: Connection, row: dict[str, Any]) -> None:
    connection.execute(_AUDIT, row)
