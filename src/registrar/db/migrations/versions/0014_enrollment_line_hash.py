"""enrollments.sis_line_hash: the hash of the extract line each row was last loaded from

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

A complete refresh skips parsing and validating every line whose bytes hash to a row's stored
value (sis/service.py, "the unchanged lines"): its work follows what changed. Rows loaded before
this column have none; the first refresh after it parses every line and stores them all, once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: SQLite adds it without rebuilding the table. No index:
    # a refresh reads them all in one scan.
    op.add_column("enrollments", sa.Column("sis_line_hash", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("sis_line_hash")
