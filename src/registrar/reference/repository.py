"""Reference codes: every statement on the petition types, origins and schools tables.

Plain functions over a Connection, for `Database.read` and `Database.write` (see db/__init__.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Connection, Row, Select, Table, func, insert, select, update

from registrar.auth.client import Client
from registrar.paging.pages import CollectionSpec
from registrar.reference.filters import FIELDS
from registrar.reference.models import Origin, PetitionType, School

CodeModel = type[PetitionType] | type[Origin] | type[School]


class CodeRow(Protocol):
    """A checked code to store (reference/service.py's Code)."""

    @property
    def table(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def is_active(self) -> bool: ...


TABLES: dict[str, CodeModel] = {
    "petition_types": PetitionType,
    "origins": Origin,
    "schools": School,
}


def _everyone(_client: Client) -> list[ColumnElement[bool]]:
    """Reference codes are the vocabulary of petitions, about no one: every token sees them all."""
    return []


def _no_one(_client: Client) -> ColumnElement[bool] | None:
    return None


def collection_spec(name: str) -> CollectionSpec:
    """A reference table as a collection: filters on every attribute, paged like the others."""
    table = cast(Table, TABLES[name].__table__)
    return CollectionSpec(
        resource=name,
        key=table.c.pk,
        table=table,
        fields=FIELDS[name],
        visibility=_everyone,
        hidden=_no_one,
    )


def code_rows(name: str) -> Select[Any]:
    table = cast(Table, TABLES[name].__table__)
    return select(table.c.pk, table.c.id, table.c.name, table.c.is_active, table.c.cache_date)


def code(connection: Connection, model: CodeModel, code_id: str) -> Row[Any] | None:
    table = cast(Table, model.__table__)
    return connection.execute(select(table).where(table.c.id == code_id)).first()


def is_active(connection: Connection, model: CodeModel, code_id: str) -> bool | None:
    """Whether the code is active; None when there is no such code."""
    table = cast(Table, model.__table__)
    found = connection.scalar(select(table.c.is_active).where(table.c.id == code_id))
    return None if found is None else bool(found)


def upsert_codes(
    connection: Connection, codes: Sequence[CodeRow], now: dt.datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Insert or update by id, table by table (a handful of rows: plain statements suffice).
    New codes go to the end of their collection's order; a code keeps its place for good.
    Returns (inserted, updated) per table."""
    inserted = dict.fromkeys(TABLES, 0)
    updated = dict.fromkeys(TABLES, 0)
    for name, model in TABLES.items():
        table = cast(Table, model.__table__)
        given = [c for c in codes if c.table == name]
        if not given:
            continue
        ids = [c.id for c in given]
        existing = set(connection.scalars(select(table.c.id).where(table.c.id.in_(ids))))
        last = int(connection.scalar(select(func.max(table.c.pk))) or 0)
        new_rows = []
        for c in given:
            values = {"name": c.name, "is_active": c.is_active, "cache_date": now}
            if c.id in existing:
                connection.execute(update(table).where(table.c.id == c.id).values(**values))
            else:
                last += 1
                new_rows.append({"id": c.id, "pk": last, **values})
        if new_rows:
            connection.execute(insert(table), new_rows)
        inserted[name] = len(new_rows)
        updated[name] = len(given) - len(new_rows)
    return inserted, updated
