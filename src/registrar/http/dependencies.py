"""Annotated dependencies shared by every router: the runtime, the caller and its scopes, the
found-set key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from registrar.auth.client import Client
from registrar.auth.service import shared_secret
from registrar.core.problems import forbidden
from registrar.core.runtime import Runtime
from registrar.http.authentication import authenticate
from registrar.http.openapi import BEARER_SCHEME
from registrar.paging import found_sets
from registrar.paging.pages import PageQuery


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


class _DocumentedBearer(HTTPBearer):
    """Declares the bearer scheme in the OpenAPI document, and reads nothing: the header is read by
    `authenticate` (http/authentication.py), the one parser the rate limiter and the log share."""

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        return None


_bearer = _DocumentedBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME,
    bearerFormat="JWT",
    description="A JWT from `POST /api/jwt`: in /docs, log in there with the API key first.",
)


async def get_current_client(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Client:
    """The caller: its token verified, its scopes cut to what its account holds now (401 when
    the token is bad or the account revoked)."""
    return await authenticate(request.scope)


CurrentClient = Annotated[Client, Depends(get_current_client)]


def require_scopes(*scopes: str) -> Callable[[Client], Awaitable[Client]]:
    """A dependency that answers 403 unless the caller's token carries every scope named. The
    scopes are declared through `Security`, so the OpenAPI document's security requirement for
    the operation lists them (http/openapi.py names them in its description too)."""

    # A default, not an Annotated hint: with postponed annotations the hint would be a string
    # naming this closure's `scopes`, which FastAPI cannot resolve.
    verified = Security(get_current_client, scopes=list(scopes))

    async def _check(client: Client = verified) -> Client:
        missing = [s for s in scopes if s not in client.scopes]
        if missing:
            raise forbidden(missing)
        return client

    _check.__name__ = "requires_" + "_".join(s.replace(":", "_").replace(".", "_") for s in scopes)
    return _check


async def get_found_set_secret(runtime: RuntimeDep) -> bytes:
    """The key that signs found sets (continuation keys), read once per process."""
    if runtime.found_set_secret is None:
        runtime.found_set_secret = await shared_secret(runtime.db, found_sets.SECRET_NAME)
    return runtime.found_set_secret


FoundSetSecret = Annotated[bytes, Depends(get_found_set_secret)]


async def get_page_query(
    request: Request, runtime: RuntimeDep, secret: FoundSetSecret
) -> PageQuery:
    """A collection route's request, as paging takes it (read after the caller's checks)."""
    return PageQuery(
        list(request.query_params.multi_items()),
        runtime.settings,
        secret,
        query_bytes=len(request.scope["query_string"]),
    )


PageQueryDep = Annotated[PageQuery, Depends(get_page_query)]
