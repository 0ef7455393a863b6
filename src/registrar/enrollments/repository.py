"""Enrollment queries. Every read applies the FERPA rule (common/ferpa.py) through `visible_to`."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.auth.scopes import PEOPLE_PRIVATE
from registrar.auth.tokens import Client
from registrar.common import ferpa
from registrar.common.collections import CollectionSpec
from registrar.enrollments.filters import FIELDS
from registrar.enrollments.models import Enrollment, Section, Term


def visible_to(client: Client) -> list[ColumnElement[bool]]:
    """Conditions that hide enrollments of confidential people (the FERPA rule, common/ferpa.py)."""
    return ferpa.visible_to(client, Enrollment.netid)


def hidden_from(client: Client) -> ColumnElement[bool] | None:
    return ferpa.hidden_from(client, Enrollment.netid)


def enrollment_rows() -> Select[tuple[Enrollment, Section, Term]]:
    """An enrollment with its section and term: everything the representation needs, one query."""
    return (
        select(Enrollment, Section, Term)
        .join(Section, Section.id == Enrollment.section_id)
        .join(Term, Term.id == Enrollment.term_id)
    )


def _by_id(client: Client) -> Select[tuple[Enrollment, Section, Term]]:
    return enrollment_rows().where(Enrollment.id == bindparam("enrollment_id"), *visible_to(client))


_ANYONE = Client(sub="", name="", email="", scopes=frozenset(), claims={})
_PRIVATE = Client(sub="", name="", email="", scopes=frozenset({PEOPLE_PRIVATE}), claims={})
# Built once: the hottest query of the API skips statement construction and cache-key work.
_BY_ID = {True: _by_id(_PRIVATE), False: _by_id(_ANYONE)}


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
        hidden=hidden_from,
    )
