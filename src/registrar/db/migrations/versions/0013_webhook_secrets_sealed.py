"""webhook secrets sealed at rest: every stored subscription secret encrypted (AES-GCM-SIV under
the `webhook-secrets` instance secret, webhooks/sealing.py), the column wide enough for it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import datetime as dt
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registrar.db.base import UTCDateTime
from registrar.webhooks.sealing import PREFIX, SECRET_NAME, SecretBox

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEBHOOKS = sa.table("webhooks", sa.column("id", sa.String), sa.column("secret", sa.Text))
SECRETS = sa.table(
    "instance_secrets",
    sa.column("name", sa.String),
    sa.column("value", sa.Text),
    sa.column("created_at", UTCDateTime()),
)


def _box(connection: sa.Connection, *, make: bool) -> SecretBox | None:
    find = sa.select(SECRETS.c.value).where(SECRETS.c.name == SECRET_NAME)
    value = connection.scalar(find)
    if value is None and make:
        now = dt.datetime.now(dt.UTC)
        connection.execute(
            sa.insert(SECRETS).values(name=SECRET_NAME, value=secrets.token_hex(32), created_at=now)
        )
        value = connection.scalar(find)
    return None if value is None else SecretBox(bytes.fromhex(value))


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":  # SQLite does not enforce a VARCHAR's length
        op.alter_column("webhooks", "secret", type_=sa.Text(), existing_nullable=False)
    rows = connection.execute(sa.select(WEBHOOKS.c.id, WEBHOOKS.c.secret)).all()
    plain = [r for r in rows if not r.secret.startswith(PREFIX)]
    if not plain:
        return
    box = _box(connection, make=True)
    assert box is not None
    connection.execute(
        sa.update(WEBHOOKS)
        .where(WEBHOOKS.c.id == sa.bindparam("hook"))
        .values(secret=sa.bindparam("sealed")),
        [{"hook": r.id, "sealed": box.seal(r.id, r.secret)} for r in plain],
    )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(WEBHOOKS.c.id, WEBHOOKS.c.secret)).all()
    sealed = [r for r in rows if r.secret.startswith(PREFIX)]
    box = _box(connection, make=False)
    if sealed and box is not None:
        connection.execute(
            sa.update(WEBHOOKS)
            .where(WEBHOOKS.c.id == sa.bindparam("hook"))
            .values(secret=sa.bindparam("opened")),
            [{"hook": r.id, "opened": box.open(r.id, r.secret)} for r in sealed],
        )
    if connection.dialect.name == "postgresql":
        op.alter_column("webhooks", "secret", type_=sa.String(length=64), existing_nullable=False)
