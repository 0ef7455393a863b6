"""enrollments: (netid, term_id) index in place of the netid index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

The composite index answers `netid=` filters as the old one did, and lets the FERPA-aware count of
a term range read only index entries.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_enrollments_netid_term_id", "enrollments", ["netid", "term_id"])
    op.drop_index("ix_enrollments_netid", table_name="enrollments")


def downgrade() -> None:
    op.create_index("ix_enrollments_netid", "enrollments", ["netid"])
    op.drop_index("ix_enrollments_netid_term_id", table_name="enrollments")
