"""Annotated dependencies shared by every router: the runtime, the session, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.auth.tokens import Client, verify_token
from registrar.core.problems import forbidden, unauthorized
from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.paging.found_sets import shared_secret


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings_dep(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_read_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.db.reading() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]

_bearer = HTTPBearer(auto_error=False, description="A JWT from POST /api/jwt")


async def get_current_client(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Client:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise unauthorized("A bearer token is required.")
    return await verify_token(runtime.keyring, runtime.settings, credentials.credentials)


CurrentClient = Annotated[Client, Depends(get_current_client)]


def require_scopes(*scopes: str) -> Callable[[Client], Awaitable[Client]]:
    """A dependency that answers 403 unless the caller's token carries every scope named."""

    async def _check(client: CurrentClient) -> Client:
        missing = [s for s in scopes if s not in client.scopes]
        if missing:
            raise forbidden(missing)
        return client

    _check.__name__ = "requires_" + "_".join(s.replace(":", "_").replace(".", "_") for s in scopes)
    return _check


async def get_found_set_secret(runtime: RuntimeDep) -> bytes:
    """The key that signs found sets (continuation keys), read once per process."""
    secret = runtime.extras.get("found_set_secret")
    if secret is None:
        secret = runtime.extras["found_set_secret"] = await shared_secret(runtime.db)
    return bytes(secret)


FoundSetSecret = Annotated[bytes, Depends(get_found_set_secret)]
