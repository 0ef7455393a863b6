"""Every attribute of the reference code representation, as a filter (none is sensitive)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from registrar.paging.filters import Field
from registrar.reference.models import Origin, PetitionType, School


def _fields(table: Table) -> dict[str, Field]:
    return {
        f.name: f
        for f in (
            Field("id", table.c.id, selective=True),
            Field("name", table.c.name),
            Field("is_active", table.c.is_active, "bool"),
            Field("cache_date", table.c.cache_date, "datetime"),
        )
    }


FIELDS: dict[str, dict[str, Field]] = {
    name: _fields(cast(Table, model.__table__))
    for name, model in (
        ("petition_types", PetitionType),
        ("origins", Origin),
        ("schools", School),
    )
}
