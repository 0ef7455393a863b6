"""service accounts: revisions and a tokens-not-before time (revocation reaches issued tokens);
public key ids; failed-login counters

Revision ID: 0006
Revises: 0007
Create Date: 2026-11-24

Every process keeps a view of the accounts and asks, every REGISTRAR_ACCOUNT_REFRESH_SECONDS, for
the rows whose `revision` is above the highest it has seen (one probe of the unique index), so a
revocation or a removed scope reaches tokens already issued. `tokens_not_before` refuses tokens
issued before a revocation even once the account is given a new key. Accounts revoked before this
migration get it from their revocation time.

`key_prefix` held the first 10 characters of each key (7 of them secret); keys are now
`rk_<id>_<secret>` and the column holds the public `rk_<id>`. Old keys keep working, but their
prefix is cleared: it was part of the secret.
"""

import math
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registrar.db.base import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_accounts") as batch:
        batch.add_column(sa.Column("tokens_not_before", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("revision", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    accounts = sa.table(
        "service_accounts",
        sa.column("pk", sa.Integer()),
        sa.column("revoked_at", UTCDateTime()),
        sa.column("tokens_not_before", sa.BigInteger()),
        sa.column("revision", sa.BigInteger()),
        sa.column("key_prefix", sa.String()),
    )
    for pk, revoked_at in bind.execute(sa.select(accounts.c.pk, accounts.c.revoked_at)).all():
        not_before = None
        if revoked_at is not None:
            not_before = math.floor(revoked_at.timestamp()) + 1
        bind.execute(
            sa.update(accounts)
            .where(accounts.c.pk == pk)
            .values(revision=pk, tokens_not_before=not_before, key_prefix="")
        )
    with op.batch_alter_table("service_accounts") as batch:
        batch.alter_column("revision", existing_type=sa.BigInteger(), nullable=False)
        batch.create_unique_constraint(op.f("uq_service_accounts_revision"), ["revision"])

    # UNLOGGED on PostgreSQL, as rate_limits: counters per address and minute are not worth WAL.
    prefixes = ["UNLOGGED"] if bind.dialect.name == "postgresql" else []
    op.create_table(
        "login_failures",
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("window_start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("address", "window_start", name=op.f("pk_login_failures")),
        prefixes=prefixes,
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    with op.batch_alter_table("service_accounts") as batch:
        batch.drop_constraint(op.f("uq_service_accounts_revision"), type_="unique")
        batch.drop_column("revision")
        batch.drop_column("tokens_not_before")
