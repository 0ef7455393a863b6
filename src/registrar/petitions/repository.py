"""Petition queries. Every read applies the FERPA rule (people/ferpa.py) through `visible_to`."""

from __future__ import annotations

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
)
from sqlalchemy.dialects import postgresql, sqlite

from registrar.auth.client import Client
from registrar.paging.pages import CollectionSpec
from registrar.people import ferpa
from registrar.petitions.filters import FIELDS
from registrar.petitions.models import Petition
from registrar.reference.models import Origin, PetitionType

PETITIONS = cast(Table, Petition.__table__)


def visible_to(client: Client) -> list[ColumnElement[bool]]:
    """Conditions that hide petitions of confidential people (the FERPA rule, people/ferpa.py)."""
    return ferpa.visible_to(client, Petition.netid)


def hidden_from(client: Client) -> ColumnElement[bool] | None:
    return ferpa.hidden_from(client, Petition.netid)


# Plain columns, not ORM objects (see enrollments/repository.py), read as `row.petition_name`.
_ROW_COLUMNS = (
    Petition.pk,
    Petition.id,
    Petition.netid,
    Petition.petition_code,
    PetitionType.name.label("petition_name"),
    Petition.origin_code,
    Origin.name.label("origin_name"),
    Petition.school,
    Petition.decision,
    Petition.grade_term,
    Petition.effective_date,
    Petition.cache_date,
)


# Built once: a page's statements are built around it (paging/pages.py).
_PETITION_ROWS = (
    select(*_ROW_COLUMNS)
    .join(PetitionType, PetitionType.id == Petition.petition_code)
    .join(Origin, Origin.id == Petition.origin_code)
)


def petition_rows() -> Select[Any]:
    """A petition with its type's and origin's names: the whole representation in one query."""
    return _PETITION_ROWS


def visible_petition(
    connection: Connection, petition_id: str, sees_private: bool
) -> Row[Any] | None:
    """The petition with this id if it exists and the caller may see it; else None (→ 404).

    A read for `Database.read`: it runs on a plain connection.
    """
    return connection.execute(_BY_ID[sees_private], {"petition_id": petition_id}).first()


# Built once, per FERPA view (the private scope or not).
_BY_ID = {
    private: petition_rows().where(
        Petition.id == bindparam("petition_id"), *ferpa.visible_with(private, Petition.netid)
    )
    for private in (False, True)
}


def visible_petitions(
    connection: Connection, ids: list[str], sees_private: bool
) -> dict[str, Row[Any]]:
    """The petitions with these ids that the caller may see, by id: one query (a feed page)."""
    query = petition_rows().where(
        Petition.id.in_(bindparam("ids", expanding=True)),
        *ferpa.visible_with(sees_private, Petition.netid),
    )
    return {row.id: row for row in connection.execute(query, {"ids": ids})}


def find_by_task(connection: Connection, task_id: str) -> str | None:
    """The id of the petition a task already created (a redelivered task must not create a
    second)."""
    found: str | None = connection.scalar(
        select(Petition.id).where(Petition.created_by_task == task_id)
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


def insert_petition(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(PETITIONS).values(**values))


def add_petitions(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert petitions whose id is new (`registrar demo`); those already there stay as they are.
    Returns how many were added."""
    if not rows:
        return 0
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    before = connection.scalar(select(func.count()).select_from(PETITIONS)) or 0
    connection.execute(
        dialect_insert(PETITIONS).on_conflict_do_nothing(index_elements=["id"]), rows
    )
    after = connection.scalar(select(func.count()).select_from(PETITIONS)) or 0
    return int(after) - int(before)
