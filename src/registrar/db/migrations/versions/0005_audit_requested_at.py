"""enrollment_audit: when each applied request was made, indexed per enrollment

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

"The newest request wins" asked for the newest request applied to an enrollment by joining every
audit row of that enrollment to its task: a scan that grew with the enrollment's history, and
forgot requests whose tasks had been pruned. The audit row now keeps its request's time, and
(enrollment_id, requested_at) answers the question with one index probe. Rows written before keep
their task's request_date, or, when the task is gone, the time the change was applied (never
earlier than the request).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registrar.db.base import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment_audit") as batch:
        batch.add_column(sa.Column("requested_at", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE enrollment_audit SET requested_at = COALESCE("
        "(SELECT tasks.request_date FROM tasks WHERE tasks.id = enrollment_audit.task_id),"
        " enrollment_audit.changed_at)"
    )
    op.create_index(
        "ix_enrollment_audit_enrollment_id_requested_at",
        "enrollment_audit",
        ["enrollment_id", "requested_at"],
    )
    op.drop_index("ix_enrollment_audit_enrollment_id", table_name="enrollment_audit")


def downgrade() -> None:
    op.create_index("ix_enrollment_audit_enrollment_id", "enrollment_audit", ["enrollment_id"])
    op.drop_index("ix_enrollment_audit_enrollment_id_requested_at", table_name="enrollment_audit")
    with op.batch_alter_table("enrollment_audit") as batch:
        batch.drop_column("requested_at")
