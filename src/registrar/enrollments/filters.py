"""Every attribute of the enrollment representation, as a filter. Sensitive ones need the scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.sql.visitors import replacement_traverse

from registrar.auth.scopes import ENROLLMENTS_READ_SENSITIVE as SENSITIVE
from registrar.enrollments.models import Enrollment, Section, Term
from registrar.paging.filters import Field
from registrar.sis.models import SisLoad


def confirmed_at() -> Any:
    """When the newest complete SIS load (a refresh) confirmed every enrollment: a scalar subquery,
    run once per statement (one probe of ix_sis_loads_complete_loaded_at); NULL before any."""
    return select(func.max(SisLoad.loaded_at)).where(SisLoad.complete).scalar_subquery()


def _as_read(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    """A condition on the `cache_date` column, made one on cache_date as a reader sees it: the
    later of the column and `confirmed_at` (sis/models.py says why). Rows at or after the
    confirmation are filtered on their column (its index); those before it all read as the
    confirmation time, so the same condition is asked of that one value."""
    confirmed = confirmed_at()
    column = Enrollment.__table__.c.cache_date

    def swap(element: Any, **_kw: Any) -> Any:
        proxies = getattr(element, "proxy_set", None)
        return confirmed if proxies and column in proxies else None

    at_confirmation = replacement_traverse(cond, {}, swap)
    return or_(
        and_(or_(confirmed.is_(None), Enrollment.cache_date >= confirmed), cond),
        and_(Enrollment.cache_date < confirmed, at_confirmation),
    )


def _via_section(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return Enrollment.section_id.in_(select(Section.id).where(cond))


def _via_term(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return Enrollment.term_id.in_(select(Term.id).where(cond))


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("cache_date", Enrollment.cache_date, "datetime", lift=_as_read),
        Field("id", Enrollment.id, selective=True),
        Field("is_active", Enrollment.is_active, "bool"),
        Field("is_in_session", Enrollment.is_in_session, "bool"),
        Field("netid", Enrollment.netid, selective=True),
        Field("role", Enrollment.role),
        Field("school_id", Enrollment.school_id),
        Field("section.id", Enrollment.section_id, selective=True),
        Field("section.lms_section_id", Section.lms_section_id, lift=_via_section),
        Field("section.sis_section_id", Section.sis_section_id, lift=_via_section),
        Field("term.id", Enrollment.term_id),
        Field("term.lms_term_id", Term.lms_term_id, lift=_via_term),
        Field("term.sis_ptrm_code", Term.sis_ptrm_code, lift=_via_term),
        Field("term.sis_term_code", Term.sis_term_code, lift=_via_term),
        Field("final_grade", Enrollment.final_grade, scope=SENSITIVE),
        Field("credit_hours_earned", Enrollment.credit_hours_earned, "float", scope=SENSITIVE),
        Field(
            "course_assessment",
            Enrollment.course_submit_date,
            scope=SENSITIVE,
            null_condition=and_(
                Enrollment.course_submit_date.is_(None), Enrollment.course_opt_out_date.is_(None)
            ),
        ),
        Field(
            "course_assessment.submit_date",
            Enrollment.course_submit_date,
            "datetime",
            scope=SENSITIVE,
        ),
        Field(
            "course_assessment.opt_out_date",
            Enrollment.course_opt_out_date,
            "datetime",
            scope=SENSITIVE,
        ),
    )
}
