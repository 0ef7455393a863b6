"""Terms, sections and enrollments: the cache of the student information system."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registrar.core.clock import utcnow
from registrar.db.base import Base, UTCDateTime


class Term(Base):
    __tablename__ = "terms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lms_term_id: Mapped[str | None] = mapped_column(String(64), index=True)
    sis_ptrm_code: Mapped[str | None] = mapped_column(String(16), index=True)
    sis_term_code: Mapped[str | None] = mapped_column(String(16), index=True)


class Section(Base):
    __tablename__ = "sections"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    lms_section_id: Mapped[str | None] = mapped_column(String(128), index=True)
    sis_section_id: Mapped[str | None] = mapped_column(String(128), index=True)


class Enrollment(Base):
    __tablename__ = "enrollments"

    # Surrogate key: the stable order of found sets and keyset paging.
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(256), unique=True, nullable=False)
    netid: Mapped[str] = mapped_column(ForeignKey("people.netid"), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    school_id: Mapped[str | None] = mapped_column(String(16), index=True)
    section_id: Mapped[str] = mapped_column(ForeignKey("sections.id"), nullable=False, index=True)
    term_id: Mapped[str] = mapped_column(ForeignKey("terms.id"), nullable=False, index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, index=True)
    is_in_session: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, index=True)
    # Sensitive: only with api:academic:enrollments:read.sensitive.
    final_grade: Mapped[str | None] = mapped_column(String(16), index=True)
    credit_hours_earned: Mapped[float | None] = mapped_column(Float, index=True)
    course_submit_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    course_opt_out_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    # When a load last changed the row (or confirmed it, in a partial load); the cache_date a
    # reader sees is the later of this and the newest complete load (sis/models.py: SisLoad).
    cache_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    # When a task last wrote a value the API can write (course_assessment): a load of an extract
    # taken before this keeps it (--as-of); a load that writes the SIS's value clears it.
    api_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A 64-bit hash of the extract line the row was last loaded from (sis/records.py
    # `line_hash`): a complete refresh does not parse a line whose hash a row holds (unless the
    # API wrote that row since: api_changed_at). NULL: never loaded from a file, or invalidated.
    sis_line_hash: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        # Serves `netid=` filters, and covers the FERPA count of a term range (people/ferpa.py
        # counts the confidential people's enrollments in the range without reading rows).
        Index("ix_enrollments_netid_term_id", "netid", "term_id"),
    )


class EnrollmentAudit(Base):
    """One row per change a task made to an enrollment: who, when, before, after, which task."""

    __tablename__ = "enrollment_audit"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enrollment_id: Mapped[str] = mapped_column(String(256), nullable=False)
    # Unique: a task redelivered after a lost lease finds its own audit row and does nothing twice.
    task_id: Mapped[str] = mapped_column(String(24), nullable=False, unique=True)
    actor_sub: Mapped[str] = mapped_column(String(255), nullable=False)
    worker_id: Mapped[str | None] = mapped_column(String(255))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    # When the applied request was made (its task's request_date): "the newest request wins".
    requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The newest request applied to an enrollment, in one probe (and its audit trail).
        Index("ix_enrollment_audit_enrollment_id_requested_at", "enrollment_id", "requested_at"),
    )
