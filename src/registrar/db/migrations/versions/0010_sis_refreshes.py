"""sis_refreshes: the record of scheduled SIS refreshes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

One row per attempt to refresh from REGISTRAR_SIS_EXTRACT (sis/refresh.py): the file as seen,
the task, the outcome and the load's counts. At most one attempt is `running` (a partial unique
index), and the newest row is what the next slot compares the file with.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registrar.db.base import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sis_refreshes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=24), nullable=False),
        sa.Column("task_attempt", sa.Integer(), nullable=False),
        sa.Column("extract", sa.Text(), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("file_mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=True),
        sa.Column("inserted", sa.Integer(), nullable=True),
        sa.Column("updated", sa.Integer(), nullable=True),
        sa.Column("unchanged", sa.Integer(), nullable=True),
        sa.Column("removed", sa.Integer(), nullable=True),
        sa.Column("kept", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sis_refreshes")),
    )
    op.create_index(
        "ix_sis_refreshes_running",
        "sis_refreshes",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index("ix_sis_refreshes_status_finished", "sis_refreshes", ["status", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_sis_refreshes_status_finished", table_name="sis_refreshes")
    op.drop_index("ix_sis_refreshes_running", table_name="sis_refreshes")
    op.drop_table("sis_refreshes")
