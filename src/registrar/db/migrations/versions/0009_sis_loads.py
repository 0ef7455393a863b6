"""SIS loads: one row per committed load (its confirmation time, as-of, counts), and when the API
last wrote each enrollment

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

`cache_date` is when a record was last confirmed by a refresh. Writing it into every row on every
refresh rewrote all of a row's index entries on PostgreSQL for records that had not changed; a
complete load now writes its time once, here, and a reader sees the later of the two.
`enrollments.api_changed_at` lets a load keep an API write newer than its extract (`--as-of`).
Rows written before take the time of their newest applied (not superseded) task.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registrar.db.base import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sis_loads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.Column("milliseconds", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sis_loads")),
    )
    op.create_index("ix_sis_loads_complete_loaded_at", "sis_loads", ["complete", "loaded_at"])
    # A nullable column without a default: SQLite adds it without rebuilding the table.
    op.add_column("enrollments", sa.Column("api_changed_at", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE enrollments SET api_changed_at = (SELECT max(a.changed_at) FROM enrollment_audit a "
        "WHERE a.enrollment_id = enrollments.id "
        "AND (a.note IS NULL OR a.note NOT LIKE '%superseded%')) "
        "WHERE id IN (SELECT enrollment_id FROM enrollment_audit)"
    )


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("api_changed_at")
    op.drop_table("sis_loads")
