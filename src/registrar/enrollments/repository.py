"""Enrollment queries. FERPA hiding lives here, in `visible_to`, and every read goes through it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.auth.tokens import Client
from registrar.common.collections import CollectionSpec
from registrar.enrollments.filters import FIELDS
from registrar.enrollments.models import Enrollment, Person, Section, Term


def visible_to(client: Client) -> list[ColumnElement[bool]]:
    """Conditions that hide enrollments of confidential people from callers without the scope."""
    return [] if client.sees_private else [~_CONFIDENTIAL]


def enrollment_rows() -> Select[tuple[Enrollment, Section, Term]]:
    """An enrollment with its section and term: everything the representation needs, one query."""
    return (
        select(Enrollment, Section, Term)
        .join(Section, Section.id == Enrollment.section_id)
        .join(Term, Term.id == Enrollment.term_id)
    )


def _by_id(sees_private: bool) -> Select[tuple[Enrollment, Section, Term]]:
    hidden = [] if sees_private else [~_CONFIDENTIAL]
    return enrollment_rows().where(Enrollment.id == bindparam("enrollment_id"), *hidden)


_CONFIDENTIAL = exists().where(Person.netid == Enrollment.netid, Person.confidential.is_(True))
# Built once: the hottest query of the API skips statement construction and cache-key work.
_BY_ID = {True: _by_id(True), False: _by_id(False)}


async def get_visible_enrollment(
    session: AsyncSession, enrollment_id: str, client: Client
) -> tuple[Enrollment, Section, Term] | None:
    """The enrollment with this id if it exists and the caller may see it; else None (→ 404)."""
    row = (
        await session.execute(_BY_ID[client.sees_private], {"enrollment_id": enrollment_id})
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
