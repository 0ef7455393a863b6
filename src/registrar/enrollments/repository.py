"""Enrollment queries. FERPA hiding lives here, in `visible_to`, and every read goes through it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.auth.tokens import Client
from registrar.common.collections import CollectionSpec
from registrar.enrollments.filters import FIELDS
from registrar.enrollments.models import Enrollment, Person, Section, Term


def visible_to(client: Client) -> list[ColumnElement[bool]]:
    """Conditions that hide enrollments of confidential people from callers without the scope."""
    if client.sees_private:
        return []
    confidential = exists().where(Person.netid == Enrollment.netid, Person.confidential.is_(True))
    return [~confidential]


def enrollment_rows() -> Select[tuple[Enrollment, Section, Term]]:
    """An enrollment with its section and term: everything the representation needs, one query."""
    return (
        select(Enrollment, Section, Term)
        .join(Section, Section.id == Enrollment.section_id)
        .join(Term, Term.id == Enrollment.term_id)
    )


async def get_visible_enrollment(
    session: AsyncSession, enrollment_id: str, client: Client
) -> tuple[Enrollment, Section, Term] | None:
    """The enrollment with this id if it exists and the caller may see it; else None (→ 404)."""
    row = (
        await session.execute(
            enrollment_rows().where(Enrollment.id == enrollment_id, *visible_to(client))
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def collection_spec() -> CollectionSpec:
    return CollectionSpec(
        resource="enrollments",
        key=Enrollment.pk,
        table=Enrollment,
        fields=FIELDS,
        visibility=visible_to,
    )
