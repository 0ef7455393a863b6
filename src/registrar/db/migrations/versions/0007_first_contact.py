"""reference codes page like every collection; tasks carry their request's correlation id; dates
shown to the second are kept to the second

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02

- petition_types, origins, schools: an integer `pk` (unique), the order their collections and
  found sets follow, as enrollments and petitions have. Existing codes are numbered in id order.
- tasks.correlation_id: the X-Correlation-ID of the request that queued the task, so the worker's
  log lines about it carry the same id as the API's.
- Dates the API writes to the second (`course_assessment` dates, `cache_date`, `effective_date`)
  were stored with the microseconds a PATCH or a clock gave them, so a filter with the value a
  client had just read could miss it. Stored values are truncated to the second, as new ones are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFERENCE_TABLES = ("petition_types", "origins", "schools")
WHOLE_SECOND_COLUMNS = {
    "enrollments": ("course_submit_date", "course_opt_out_date", "cache_date"),
    "petitions": ("effective_date", "cache_date"),
    "petition_types": ("cache_date",),
    "origins": ("cache_date",),
    "schools": ("cache_date",),
}


def upgrade() -> None:
    for table in REFERENCE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("pk", sa.Integer(), nullable=True))
        op.execute(
            f"UPDATE {table} SET pk = (SELECT COUNT(*) FROM {table} AS o WHERE o.id <= {table}.id)"
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("pk", existing_type=sa.Integer(), nullable=False)
            batch.create_index(f"ix_{table}_pk", ["pk"], unique=True)

    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(length=128), nullable=True))

    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, columns in WHOLE_SECOND_COLUMNS.items():
        for column in columns:
            if sqlite:
                # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' text (db/base.py, UTCDateTime).
                op.execute(
                    f"UPDATE {table} SET {column} = substr({column}, 1, 19) || '.000000' "
                    f"WHERE {column} IS NOT NULL AND substr({column}, 20) <> '.000000'"
                )
            else:
                op.execute(
                    f"UPDATE {table} SET {column} = date_trunc('second', {column}) "
                    f"WHERE {column} <> date_trunc('second', {column})"
                )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("correlation_id")
    for table in REFERENCE_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_pk")
            batch.drop_column("pk")
