"""Service accounts and the login service: decisions, no HTTP (auth/repository.py holds the SQL)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row

from registrar.auth import repository
from registrar.auth.api_keys import display_prefix, hash_api_key, new_api_key, same_hash
from registrar.auth.scopes import ALL_SCOPES, parse_scopes
from registrar.auth.signing import KeyRing, generate_key
from registrar.auth.tokens import issue_token
from registrar.core.clock import utcnow
from registrar.core.problems import unauthorized
from registrar.core.settings import Settings
from registrar.db.database import Database


class ServiceAccountError(ValueError):
    pass


# The service's own actors (the periodic jobs' "registrar.scheduler", tasks/periodic.py) queue tasks
# under subs with this prefix: an account holding one would read their task records and
# task.completed events (a failed refresh's message quotes extract lines).
RESERVED_SUB_PREFIX = "registrar."


@dataclass(frozen=True)
class NewKey:
    """An API key as it is shown once (`key`) and as it is kept (its prefix and keyed hash)."""

    key: str
    prefix: str
    hash: str


def _new_key(settings: Settings) -> NewKey:
    key = new_api_key()
    return NewKey(key, display_prefix(key), hash_api_key(key, settings.key_encryption_secret))


def _granted(sub: str, scopes: str) -> list[str]:
    granted = parse_scopes(scopes)
    unknown = [s for s in granted if s not in ALL_SCOPES]
    if unknown:
        raise ServiceAccountError(f"unknown scope(s): {', '.join(unknown)}")
    if not sub.strip():
        raise ServiceAccountError("--sub must not be empty")
    if sub.strip().lower().startswith(RESERVED_SUB_PREFIX):
        raise ServiceAccountError(f"subs beginning {RESERVED_SUB_PREFIX!r} are the service's own")
    return granted


async def create_service_account(
    db: Database, settings: Settings, *, sub: str, name: str, email: str, scopes: str
) -> str:
    """Register an account; its new API key (shown once: only its hash is kept)."""
    granted = _granted(sub, scopes)
    key = _new_key(settings)

    def create(connection: Connection) -> None:
        if repository.account_by_sub(connection, sub) is not None:
            raise ServiceAccountError(f"a service account with sub {sub!r} already exists")
        repository.insert_account(connection, _account_values(sub, name, email, granted, key))

    await db.write(create)
    return key.key


async def issue_service_account(
    db: Database,
    settings: Settings,
    *,
    sub: str,
    name: str,
    email: str,
    scopes: str,
    keep: str | None = None,
) -> tuple[str, bool]:
    """Like `create_service_account`, but an account that exists gets these scopes and is usable
    again if it was revoked; it keeps its key if that key is `keep`, else gets a new one (the old
    one stops working). Its name and email stay. Returns (the key that works, whether it was kept).
    """
    granted = _granted(sub, scopes)
    new = _new_key(settings)
    kept_hash = hash_api_key(keep, settings.key_encryption_secret) if keep else None

    def issue(connection: Connection) -> bool:
        account = repository.account_by_sub(connection, sub)
        if account is None:
            repository.insert_account(connection, _account_values(sub, name, email, granted, new))
            return False
        keeps = kept_hash is not None and same_hash(account.key_hash, kept_hash)
        repository.set_account_key(
            connection,
            sub,
            key_prefix=account.key_prefix if keeps else new.prefix,
            key_hash=account.key_hash if keeps else new.hash,
            scopes=" ".join(granted),
        )
        return keeps

    kept = await db.write(issue)
    return (keep if kept and keep else new.key), kept


def _account_values(
    sub: str, name: str, email: str, granted: list[str], key: NewKey
) -> dict[str, Any]:
    return {
        "sub": sub,
        "name": name,
        "email": email,
        "scopes": " ".join(granted),
        "key_prefix": key.prefix,
        "key_hash": key.hash,
        "created_at": utcnow(),
    }


async def revoke_service_account(db: Database, sub: str) -> bool:
    """Revoke the account: its key can no longer log in, and its tokens already issued are refused
    by every process within REGISTRAR_ACCOUNT_REFRESH_SECONDS (auth/accounts.py). False when
    there is no such account."""
    return await db.write(repository.revoke_account, sub, utcnow())


async def update_service_account_scopes(db: Database, sub: str, scopes: str) -> bool:
    """Grant exactly `scopes`: tokens already issued lose a removed scope within
    REGISTRAR_ACCOUNT_REFRESH_SECONDS (their effective scopes are their own cut by the grants),
    and new logins get the new set. False when there is no such account."""
    granted = _granted(sub, scopes)
    return await db.write(repository.set_account_scopes, sub, " ".join(granted))


async def list_service_accounts(db: Database) -> list[Row[Any]]:
    return await db.read(repository.accounts)


async def rotate_signing_key(db: Database, secret: str | None) -> str:
    """Add a new signing key and retire the current ones (still valid for verification); its kid."""
    key = generate_key(secret)

    def rotate(connection: Connection) -> None:
        repository.retire_signing_keys(connection, utcnow())
        repository.insert_signing_key(connection, key)

    await db.write(rotate)
    return str(key["kid"])


async def shared_secret(db: Database, name: str) -> bytes:
    """A random secret every process shares: made once, kept in the database."""
    value = await db.read(repository.instance_secret, name)
    if value is None:
        await db.write(repository.add_instance_secret, name, secrets.token_hex(32), utcnow())
        value = await db.read(repository.instance_secret, name)
    assert value is not None
    return bytes.fromhex(value)


@dataclass
class Login:
    jwt: str
    payload: dict[str, Any]
    accepted_scopes: list[str]


async def login(
    db: Database, keyring: KeyRing, settings: Settings, api_key: str, scope: str | None
) -> Login:
    digest = hash_api_key(api_key, settings.key_encryption_secret)
    account = await db.read(repository.account_by_key_hash, digest)
    if account is None or not same_hash(account.key_hash, digest) or account.revoked_at is not None:
        raise unauthorized("The API key is not valid.")
    granted = parse_scopes(account.scopes)
    requested = parse_scopes(scope)
    accepted = [s for s in requested if s in granted] if scope is not None else granted
    token, claims = await issue_token(
        keyring, settings, sub=account.sub, name=account.name, email=account.email, scopes=accepted
    )
    return Login(jwt=token, payload=claims, accepted_scopes=accepted)
