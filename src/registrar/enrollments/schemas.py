"""The enrollment representation of seed 002, with and without the sensitive attributes, and the
PATCH body (seed 000)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from registrar.core.clock import UTC_DATETIME


class SectionOut(BaseModel):
    id: str = Field(examples=["AAAS.010.01-202001-U-10188"])
    lms_section_id: str | None = Field(examples=["AAAS.010.01-WI20"])
    sis_section_id: str | None = Field(examples=["AAAS.010.01-WI20"])


class TermOut(BaseModel):
    id: str = Field(examples=["202001-U"])
    lms_term_id: str | None = Field(examples=["WI20"])
    sis_ptrm_code: str | None = Field(examples=["U"])
    sis_term_code: str | None = Field(examples=["202001"])


class CourseAssessment(BaseModel):
    submit_date: dt.datetime | None = Field(examples=["2020-03-05T17:53:46Z"])
    opt_out_date: dt.datetime | None = Field(examples=[None])


class EnrollmentOut(BaseModel):
    """An enrollment as `api:academic:enrollments:read` sees it."""

    cache_date: dt.datetime = Field(description="When the record was last refreshed from the SIS")
    id: str = Field(
        description="{section.id}-{netid}-{role}",
        examples=["AAAS.010.01-202001-U-10188-f002nkd-instructor"],
    )
    is_active: bool
    is_in_session: bool
    netid: str = Field(examples=["f002nkd"])
    role: str = Field(examples=["instructor"])
    school_id: str | None = Field(examples=["UG"])
    section: SectionOut
    term: TermOut


class EnrollmentSensitiveOut(EnrollmentOut):
    """With `api:academic:enrollments:read.sensitive` the sensitive attributes are present too."""

    final_grade: str | None = Field(examples=["A"])
    credit_hours_earned: float | None = Field(examples=[1])
    course_assessment: CourseAssessment | None


# Documented shape: one or the other, depending on the token's scopes.
EnrollmentRepresentation = EnrollmentSensitiveOut | EnrollmentOut

ASSESSMENT_KEYS = ("submit_date", "opt_out_date")

_DATE_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{UTC_DATETIME.pattern}$",  # JSON Schema patterns are unanchored
            "examples": ["2020-03-05T17:53:46Z"],
        },
        {"type": "null"},
    ]
}
PATCH_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["course_assessment"],
    "properties": {
        "course_assessment": {
            "type": "object",
            "description": "Both keys required; at most one non-null; both null clears "
            "course_assessment to null. Dates are ISO 8601 UTC.",
            "additionalProperties": False,
            "required": list(ASSESSMENT_KEYS),
            "properties": {key: _DATE_SCHEMA for key in ASSESSMENT_KEYS},
        }
    },
}
