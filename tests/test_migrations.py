"""Migrations: the schema they build is the one the models describe, and 0005 fills its column."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, select, update
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table_of

from registrar.auth.models import ServiceAccount
from registrar.db.engine import create_database
from registrar.db.migrate import upgrade
from registrar.db.tables import Base
from registrar.enrollments.models import EnrollmentAudit
from registrar.reference.models import PetitionType
from registrar.tasks.models import Task
from tests.support.databases import make_settings, new_database_url

T = TypeVar("T")


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    url, drop = new_database_url(tmp_path)
    yield url
    drop()


def on_connection(url: str, work: Callable[[Connection], T]) -> T:
    """`work` in one committed transaction on the database (SQLite or PostgreSQL)."""

    async def run() -> T:
        db = create_database(make_settings(url))
        try:
            return await db.write(work)
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_migrated_schema_matches_the_models(fresh_url: str) -> None:
    upgrade(fresh_url)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    assert on_connection(fresh_url, differences) == []


def test_0005_keeps_each_audit_rows_request_time(fresh_url: str) -> None:
    upgrade(fresh_url, "0004")
    requested = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    applied = dt.datetime(2026, 1, 2, 3, 4, 9, tzinfo=dt.UTC)
    kept, pruned = "a" * 24, "b" * 24
    task = Task.__table__
    audit = EnrollmentAudit.__table__

    def seed(connection: Connection) -> None:
        connection.execute(
            insert(task).values(
                id=kept,
                resource="academic.enrollments",
                action="PATCH",
                requester={},
                sub="s",
                private_scope=False,
                status="complete",
                request_date=requested,
                worker_data={},
                base_url="http://x",
                called_url="http://x/y",
                attempts=1,
                max_attempts=5,
                run_at=requested,
            )
        )
        for task_id in (kept, pruned):
            connection.execute(
                insert(audit).values(
                    enrollment_id="e", task_id=task_id, actor_sub="s", changed_at=applied
                )
            )

    on_connection(fresh_url, seed)
    upgrade(fresh_url)

    def read(connection: Connection) -> list[Any]:
        query = select(audit.c.task_id, audit.c.requested_at).order_by(audit.c.task_id)
        return [tuple(row) for row in connection.execute(query)]

    # The task still there gives its request_date; a pruned one, the time the change was applied
    # (never earlier than its request).
    assert on_connection(fresh_url, read) == [(kept, requested), (pruned, applied)]


def test_0007_numbers_reference_codes_and_keeps_dates_to_the_second(fresh_url: str) -> None:
    upgrade(fresh_url, "0005")
    precise = dt.datetime(2024, 11, 20, 20, 54, 27, 328833, tzinfo=dt.UTC)
    whole = precise.replace(microsecond=0)
    codes = PetitionType.__table__

    def seed(connection: Connection) -> None:
        # The stamp as an older version stored it, microseconds and all (through the column
        # type, so in each database's own format).
        connection.execute(update(codes).values(cache_date=precise))

    on_connection(fresh_url, seed)
    upgrade(fresh_url)

    def read(connection: Connection) -> list[Any]:
        query = select(codes.c.id, codes.c.pk, codes.c.cache_date).order_by(codes.c.pk)
        return [tuple(row) for row in connection.execute(query)]

    rows = on_connection(fresh_url, read)
    ids = [row[0] for row in rows]
    assert len(rows) >= 10 and ids == sorted(ids)  # numbered in id order, from 1
    assert [row[1] for row in rows] == list(range(1, len(rows) + 1))
    assert {row[2] for row in rows} == {whole}


def sa_table(name: str, *columns: str) -> Any:
    """A table as an old revision had it (the models describe the newest)."""
    return sa_table_of(name, *(sa_column(c) for c in columns))


def test_0006_orders_accounts_keeps_revocations_and_clears_secret_prefixes(fresh_url: str) -> None:
    upgrade(fresh_url, "0007")  # 0006 came after 0007 (the two were written side by side)
    revoked_at = dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)
    accounts = sa_table(
        "service_accounts",
        *("pk", "sub", "name", "email", "scopes", "key_prefix", "key_hash", "created_at"),
        "revoked_at",
    )

    def seed(connection: Connection) -> None:
        for sub, revoked in (("live", None), ("gone", revoked_at)):
            connection.execute(
                insert(accounts).values(
                    sub=sub,
                    name=sub,
                    email=f"{sub}@x",
                    scopes="",
                    key_prefix="rk_AbCdEfG",  # the old 10 characters, 7 of them secret
                    key_hash=sub * 8,
                    created_at=revoked_at.replace(tzinfo=None),
                    revoked_at=revoked,
                )
            )

    on_connection(fresh_url, seed)
    upgrade(fresh_url)
    table = ServiceAccount.__table__

    def read(connection: Connection) -> list[Any]:
        query = select(
            table.c.sub, table.c.key_prefix, table.c.tokens_not_before, table.c.revision
        ).order_by(table.c.pk)
        return [tuple(row) for row in connection.execute(query)]

    # Tokens issued in or before the revocation's second stay refused; revisions are distinct.
    assert on_connection(fresh_url, read) == [
        ("live", "", None, 1),
        ("gone", "", int(revoked_at.timestamp()) + 1, 2),
    ]


def test_0013_seals_the_stored_webhook_secrets(fresh_url: str) -> None:
    from registrar.webhooks import repository as webhooks_repo
    from registrar.webhooks.models import Webhook

    upgrade(fresh_url, "0012")
    hooks = Webhook.__table__
    plain = "whsec_" + "QUJD" * 11  # as 0012 stored it
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)

    def seed(connection: Connection) -> None:
        connection.execute(
            insert(hooks).values(
                id="c" * 24,
                sub="svc",
                url="https://example.edu/hook",
                types=["enrollment.created"],
                secret=plain,
                created=now,
                status="active",
                cursor=0,
            )
        )

    on_connection(fresh_url, seed)
    upgrade(fresh_url)

    def opened(connection: Connection) -> tuple[str, str]:
        stored = str(connection.scalar(select(hooks.c.secret)))
        return stored, webhooks_repo.secret_box(connection).open("c" * 24, stored)

    stored, secret = on_connection(fresh_url, opened)
    assert stored.startswith("sealed1:") and plain not in stored and "QUJD" * 3 not in stored
    assert secret == plain
