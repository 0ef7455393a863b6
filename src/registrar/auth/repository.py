"""Service accounts, signing keys and shared secrets: every statement the login service runs.

Plain functions over a Connection, for `Database.read` and `Database.write` (see db/__init__.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registrar.auth.models import InstanceSecret, ServiceAccount, SigningKey

ACCOUNTS = cast(Table, ServiceAccount.__table__)
KEYS = cast(Table, SigningKey.__table__)
SECRETS = cast(Table, InstanceSecret.__table__)
A = ACCOUNTS.c


def account_by_sub(connection: Connection, sub: str) -> Row[Any] | None:
    return connection.execute(select(ACCOUNTS).where(A.sub == sub)).first()


def account_by_key_hash(connection: Connection, key_hash: str) -> Row[Any] | None:
    return connection.execute(select(ACCOUNTS).where(A.key_hash == key_hash)).first()


def accounts(connection: Connection) -> list[Row[Any]]:
    return list(connection.execute(select(ACCOUNTS).order_by(A.sub)).all())


def insert_account(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(ACCOUNTS).values(**values))


def set_account_key(
    connection: Connection, sub: str, *, key_prefix: str, key_hash: str, scopes: str
) -> None:
    """A new key and these scopes for an account, revoked or not (it is usable again)."""
    connection.execute(
        update(ACCOUNTS)
        .where(A.sub == sub)
        .values(key_prefix=key_prefix, key_hash=key_hash, scopes=scopes, revoked_at=None)
    )


def revoke_account(connection: Connection, sub: str, now: dt.datetime) -> bool:
    """Revoke the account's key (once: a revoked account keeps its first revocation time).
    False when there is no such account."""
    if account_by_sub(connection, sub) is None:
        return False
    connection.execute(
        update(ACCOUNTS).where(A.sub == sub, A.revoked_at.is_(None)).values(revoked_at=now)
    )
    return True


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
