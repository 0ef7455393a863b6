"""Every attribute of the enrollment representation, as a filter. Sensitive ones need the scope."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select

from registrar.auth.scopes import ENROLLMENTS_READ_SENSITIVE as SENSITIVE
from registrar.enrollments.models import Enrollment, Section, Term
from registrar.paging.filters import Field


def _via_section(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return Enrollment.section_id.in_(select(Section.id).where(cond))


def _via_term(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return Enrollment.term_id.in_(select(Term.id).where(cond))


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("cache_date", Enrollment.cache_date, "datetime"),
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
