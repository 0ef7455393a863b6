"""reference defaults: the shipped petition types, origins and schools

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:20:00

The data lives once, in registrar/reference/defaults/*.json (a JSON array per table); this revision
reads it from the installed package. It reads the files itself rather than importing the loader,
so later changes to the loader's code cannot change what this revision did. Codes already present
(an operator's load) are left alone.
"""

import datetime as dt
import json
from collections.abc import Sequence
from importlib import resources

import sqlalchemy as sa
from alembic import op

from registrar.db.base import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("petition_types", "origins", "schools")


def _table(name: str) -> sa.TableClause:
    return sa.table(
        name,
        sa.column("id", sa.String(16)),
        sa.column("name", sa.String(255)),
        sa.column("is_active", sa.Boolean()),
        sa.column("cache_date", UTCDateTime()),
    )


def _defaults(name: str) -> list[dict[str, object]]:
    text = (resources.files("registrar.reference") / "defaults" / f"{name}.json").read_text()
    rows: list[dict[str, object]] = json.loads(text)
    return rows


def upgrade() -> None:
    bind = op.get_bind()
    now = dt.datetime.now(dt.UTC)
    for name in TABLES:
        table = _table(name)
        present = set(bind.execute(sa.select(table.c.id)).scalars())
        rows = [
            {
                "id": row["id"],
                "name": row["name"],
                "is_active": bool(row.get("is_active", True)),
                "cache_date": now,
            }
            for row in _defaults(name)
            if row["id"] not in present
        ]
        if rows:
            op.bulk_insert(table, rows)


def downgrade() -> None:
    # Remove the defaults that no petition uses; codes in use stay (the foreign keys need them).
    bind = op.get_bind()
    petitions = sa.table(
        "petitions",
        sa.column("petition_code", sa.String(16)),
        sa.column("origin_code", sa.String(16)),
        sa.column("school", sa.String(16)),
    )
    used_by = {"petition_types": "petition_code", "origins": "origin_code", "schools": "school"}
    for name in TABLES:
        table = _table(name)
        ids = [row["id"] for row in _defaults(name)]
        in_use = sa.select(petitions.c[used_by[name]])
        bind.execute(sa.delete(table).where(table.c.id.in_(ids), table.c.id.not_in(in_use)))
