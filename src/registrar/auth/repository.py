"""Service accounts, signing keys and shared secrets: every statement the login service runs.

Plain functions over a Connection, for `Database.read` and `Database.write` (see db/__init__.py).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from registrar.auth.models import InstanceSecret, LoginFailureCounter, ServiceAccount, SigningKey

ACCOUNTS = cast(Table, ServiceAccount.__table__)
KEYS = cast(Table, SigningKey.__table__)
SECRETS = cast(Table, InstanceSecret.__table__)
FAILURES = cast(Table, LoginFailureCounter.__table__)
A = ACCOUNTS.c
F = FAILURES.c


def account_by_sub(connection: Connection, sub: str) -> Row[Any] | None:
    return connection.execute(select(ACCOUNTS).where(A.sub == sub)).first()


def account_by_key_hash(connection: Connection, key_hash: str) -> Row[Any] | None:
    return connection.execute(select(ACCOUNTS).where(A.key_hash == key_hash)).first()


def accounts(connection: Connection) -> list[Row[Any]]:
    return list(connection.execute(select(ACCOUNTS).order_by(A.sub)).all())


def _next_revision(connection: Connection) -> int:
    """The revision the account change being written takes: one above every committed one.

    Writers serialize on the table (account changes are an operator's rare commands), so
    revisions commit in increasing order and a reader that has seen revision N has seen every
    change up to N: "what changed since N" is exact. PostgreSQL: SHARE ROW EXCLUSIVE conflicts
    with itself and with INSERT/UPDATE but not with reads (logins and views go on). SQLite: the
    writer's BEGIN IMMEDIATE already holds the only write lock.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("LOCK TABLE service_accounts IN SHARE ROW EXCLUSIVE MODE"))
    return int(connection.scalar(select(func.coalesce(func.max(A.revision), 0))) or 0) + 1


def insert_account(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(ACCOUNTS).values(**values, revision=_next_revision(connection)))


def set_account_key(
    connection: Connection, sub: str, *, key_prefix: str, key_hash: str, scopes: str
) -> None:
    """A new key and these scopes for an account, revoked or not (it is usable again; tokens
    issued before its revocation stay refused, see `tokens_not_before`)."""
    connection.execute(
        update(ACCOUNTS)
        .where(A.sub == sub)
        .values(
            key_prefix=key_prefix,
            key_hash=key_hash,
            scopes=scopes,
            revoked_at=None,
            revision=_next_revision(connection),
        )
    )


def set_account_scopes(connection: Connection, sub: str, scopes: str) -> bool:
    """Grant exactly these scopes; False when there is no such account."""
    if account_by_sub(connection, sub) is None:
        return False
    connection.execute(
        update(ACCOUNTS)
        .where(A.sub == sub)
        .values(scopes=scopes, revision=_next_revision(connection))
    )
    return True


def revoke_account(connection: Connection, sub: str, now: dt.datetime) -> bool:
    """Revoke the account's key and every token issued to it so far (once: a revoked account
    keeps its first revocation time). False when there is no such account.

    Tokens carry `iat` in whole seconds, so tokens of the revocation's own second are refused too.
    """
    if account_by_sub(connection, sub) is None:
        return False
    connection.execute(
        update(ACCOUNTS)
        .where(A.sub == sub, A.revoked_at.is_(None))
        .values(
            revoked_at=now,
            tokens_not_before=math.floor(now.timestamp()) + 1,
            revision=_next_revision(connection),
        )
    )
    return True


# What a process's view of the accounts holds (auth/accounts.py), and what the worker checks.
_GRANTS = select(A.sub, A.scopes, A.revoked_at, A.tokens_not_before, A.revision)


def accounts_changed_since(connection: Connection, revision: int) -> list[Row[Any]]:
    """Accounts changed after `revision` (every account for -1), oldest change first: a range
    on the unique index of `revision`."""
    return list(connection.execute(_GRANTS.where(A.revision > revision).order_by(A.revision)).all())


def grants_of(connection: Connection, subs: Iterable[str]) -> dict[str, Row[Any]]:
    """The current grants of these accounts (absent: no such account), in one statement."""
    wanted = sorted(set(subs))
    if not wanted:
        return {}
    return {r.sub: r for r in connection.execute(_GRANTS.where(A.sub.in_(wanted))).all()}


def signing_keys(connection: Connection) -> list[Row[Any]]:
    return list(connection.execute(select(KEYS)).all())


def insert_signing_key(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(KEYS).values(**values))


def retire_signing_keys(connection: Connection, now: dt.datetime) -> None:
    """Every signing key still signing stops signing (it keeps verifying)."""
    connection.execute(update(KEYS).where(KEYS.c.retired_at.is_(None)).values(retired_at=now))


def instance_secret(connection: Connection, name: str) -> str | None:
    value = connection.scalar(select(SECRETS.c.value).where(SECRETS.c.name == name))
    return None if value is None else str(value)


def add_instance_secret(connection: Connection, name: str, value: str, now: dt.datetime) -> None:
    """Store a secret unless another process stored one of that name first (theirs wins)."""
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        dialect_insert(SECRETS)
        .values(name=name, value=value, created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )


# --- failed logins per address and minute (PostgreSQL; SQLite counts in memory) ---------------


def login_failures(connection: Connection, address: str, window: int) -> int:
    found = connection.scalar(select(F.count).where(F.address == address, F.window_start == window))
    return int(found or 0)


def add_login_failure(connection: Connection, address: str, window: int) -> int:
    """Count one failed login; the address's failures in this window, this one included."""
    upsert = postgresql.insert(FAILURES).values(address=address, window_start=window, count=1)
    statement = upsert.on_conflict_do_update(
        index_elements=["address", "window_start"], set_={"count": FAILURES.c.count + 1}
    ).returning(F.count)
    return int(connection.scalar(statement) or 0)


def forget_login_failures(connection: Connection, before_window: int) -> None:
    connection.execute(FAILURES.delete().where(F.window_start < before_window))
