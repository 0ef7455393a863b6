"""Service accounts and the login service: decisions, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.auth.api_keys import display_prefix, hash_api_key, new_api_key, same_hash
from registrar.auth.models import ServiceAccount
from registrar.auth.scopes import ALL_SCOPES, parse_scopes
from registrar.auth.signing import KeyRing
from registrar.auth.tokens import issue_token
from registrar.core.clock import utcnow
from registrar.core.problems import unauthorized
from registrar.core.settings import Settings


class ServiceAccountError(ValueError):
    pass


async def create_service_account(
    session: AsyncSession, settings: Settings, *, sub: str, name: str, email: str, scopes: str
) -> tuple[ServiceAccount, str]:
    granted = parse_scopes(scopes)
    unknown = [s for s in granted if s not in ALL_SCOPES]
    if unknown:
        raise ServiceAccountError(f"unknown scope(s): {', '.join(unknown)}")
    if not sub.strip():
        raise ServiceAccountError("--sub must not be empty")
    existing = await session.scalar(select(ServiceAccount).where(ServiceAccount.sub == sub))
    if existing is not None:
        raise ServiceAccountError(f"a service account with sub {sub!r} already exists")
    key = new_api_key()
    account = ServiceAccount(
        sub=sub,
        name=name,
        email=email,
        scopes=" ".join(granted),
        key_prefix=display_prefix(key),
        key_hash=hash_api_key(key, settings.key_encryption_secret),
        created_at=utcnow(),
    )
    session.add(account)
    await session.flush()
    return account, key


async def revoke_service_account(session: AsyncSession, sub: str) -> bool:
    account = await session.scalar(select(ServiceAccount).where(ServiceAccount.sub == sub))
    if account is None:
        return False
    if account.revoked_at is None:
        account.revoked_at = utcnow()
    return True


@dataclass
class Login:
    jwt: str
    payload: dict[str, Any]
    accepted_scopes: list[str]


async def login(
    session: AsyncSession, keyring: KeyRing, settings: Settings, api_key: str, scope: str | None
) -> Login:
    digest = hash_api_key(api_key, settings.key_encryption_secret)
    account = await session.scalar(select(ServiceAccount).where(ServiceAccount.key_hash == digest))
    if account is None or not same_hash(account.key_hash, digest) or account.revoked_at is not None:
        raise unauthorized("The API key is not valid.")
    granted = parse_scopes(account.scopes)
    requested = parse_scopes(scope)
    accepted = [s for s in requested if s in granted] if scope is not None else granted
    token, claims = await issue_token(
        keyring, settings, sub=account.sub, name=account.name, email=account.email, scopes=accepted
    )
    return Login(jwt=token, payload=claims, accepted_scopes=accepted)
