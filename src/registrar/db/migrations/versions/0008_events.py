"""the change record: one row per change (created, updated with which keys, deleted, a task
completed), written with the change, with its origin (sis or api): the event feed, webhooks and the
SIS's write-back read it

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registrar.db.base import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("netid", sa.String(length=64), nullable=True),
        sa.Column("changed", sa.JSON(), nullable=True),
        sa.Column("requester", sa.String(length=255), nullable=True),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_events")),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_type_position", "events", ["type", "position"])
    op.create_index("ix_events_subject", "events", ["subject"])


def downgrade() -> None:
    op.drop_table("events")
