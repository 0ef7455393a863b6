"""Reference codes: every statement on the petition types, origins and schools tables.

Plain functions over a Connection, for `Database.read` and `Database.write` (see db/__init__.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Row, Table, select
from sqlalchemy.dialects import postgresql, sqlite

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


def codes(connection: Connection, model: CodeModel, active: bool | None) -> list[Row[Any]]:
    """A whole table, ordered by id; only active (or inactive) codes when `active` says so."""
    table = cast(Table, model.__table__)
    query = select(table).order_by(table.c.id)
    if active is not None:
        query = query.where(table.c.is_active.is_(active))
    return list(connection.execute(query).all())


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
    Returns (inserted, updated) per table."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    inserted = dict.fromkeys(TABLES, 0)
    updated = dict.fromkeys(TABLES, 0)
    for name, model in TABLES.items():
        table = cast(Table, model.__table__)
        rows = [
            {"id": c.id, "name": c.name, "is_active": c.is_active, "cache_date": now}
            for c in codes
            if c.table == name
        ]
        if not rows:
            continue
        ids = [r["id"] for r in rows]
        existing = set(connection.scalars(select(table.c.id).where(table.c.id.in_(ids))))
        stmt = insert(table).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={
                "name": stmt.excluded.name,
                "is_active": stmt.excluded.is_active,
                "cache_date": stmt.excluded.cache_date,
            },
        )
        connection.execute(stmt)
        inserted[name] = len(ids) - len(existing)
        updated[name] = len(existing)
    return inserted, updated
