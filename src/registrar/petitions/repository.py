"""Petition queries. Every read applies the FERPA rule (common/ferpa.py) through `visible_to`."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.auth.tokens import Client
from registrar.common import ferpa
from registrar.common.collections import CollectionSpec
from registrar.petitions.filters import FIELDS
from registrar.petitions.models import Petition
from registrar.reference.models import Origin, PetitionType

PetitionRow = tuple[Petition, str, str]


def visible_to(client: Client) -> list[ColumnElement[bool]]:
    """Conditions that hide petitions of confidential people (the FERPA rule, common/ferpa.py)."""
    return ferpa.visible_to(client, Petition.netid)


def hidden_from(client: Client) -> ColumnElement[bool] | None:
    return ferpa.hidden_from(client, Petition.netid)


def petition_rows() -> Select[tuple[Petition, str, str]]:
    """A petition with its type's and origin's names: the whole representation in one query."""
    return (
        select(Petition, PetitionType.name, Origin.name)
        .join(PetitionType, PetitionType.id == Petition.petition_code)
        .join(Origin, Origin.id == Petition.origin_code)
    )


async def get_visible_petition(
    session: AsyncSession, petition_id: str, client: Client
) -> PetitionRow | None:
    """The petition with this id if it exists and the caller may see it; else None (→ 404)."""
    row = (
        await session.execute(
            petition_rows().where(Petition.id == petition_id, *visible_to(client))
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


async def find_by_task(session: AsyncSession, task_id: str) -> Petition | None:
    """The petition a task already created (a redelivered task must not create a second)."""
    found: Petition | None = await session.scalar(
        select(Petition).where(Petition.created_by_task == task_id)
    )
    return found


def collection_spec() -> CollectionSpec:
    return CollectionSpec(
        resource="petitions",
        key=Petition.pk,
        table=Petition,
        fields=FIELDS,
        visibility=visible_to,
        hidden=hidden_from,
    )
