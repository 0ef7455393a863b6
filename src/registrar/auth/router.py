"""The login service: exchange an API key for a JWT; publish the public keys."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from registrar.auth.schemas import JWKS, LoginResponse
from registrar.auth.service import login
from registrar.core.problems import ProblemError, unauthorized
from registrar.http.dependencies import RuntimeDep
from registrar.http.openapi import API_KEY_SCHEME

router = APIRouter(tags=["login service"])

# The login service's credential: the raw API key in `Authorization` (no "Bearer"), declared as
# an apiKey security scheme so that /docs' Authorize button sends it (a header *parameter* named
# Authorization is one OpenAPI tools must ignore).
_api_key = APIKeyHeader(
    name="Authorization",
    scheme_name=API_KEY_SCHEME,
    auto_error=False,
    description="A service account's API key, as `registrar clients create` (or `make run`) "
    "printed it: the raw key, no `Bearer`. Used by `POST /api/jwt` only.",
)


@router.post(
    "/api/jwt",
    response_model=LoginResponse,
    summary="Exchange an API key for a JWT",
    description=(
        "Send the service account's API key as the raw `Authorization` header (no `Bearer`). "
        "`scope` narrows the token to some of the granted scopes (space or comma separated); "
        "scopes not granted are left out of `accepted_scopes`. Without it the token carries every "
        "granted scope. Past `REGISTRAR_LOGIN_FAILURES_PER_MINUTE` (20) failed logins from one "
        "address in a minute, every login from it is refused (429, `Retry-After`) until the "
        "minute ends."
    ),
)
async def post_jwt(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Security(_api_key)] = None,
    scope: Annotated[
        str | None,
        Query(
            description="Scopes wanted, space or comma separated (URL-encode the spaces)",
            openapi_examples={
                "two scopes": {
                    "value": "api:academic:enrollments:read urn:dartmouth:people:private"
                }
            },
        ),
    ] = None,
) -> LoginResponse:
    address = client_address(request)
    throttle = runtime.login_throttle
    wait = await throttle.retry_after(address)
    if wait is not None:
        raise ProblemError(
            429,
            f"Too many failed logins from this address; retry in {wait} s.",
            slug="login-throttled",
            headers={"Retry-After": str(wait)},
        )
    key = (authorization or "").strip()
    if key.lower().startswith("bearer "):
        key = key[7:].strip()
    try:
        if not key or len(key) > 512:
            raise unauthorized("An API key is required in the Authorization header.")
        result = await login(runtime.db, runtime.keyring, runtime.settings, key, scope)
    except ProblemError as exc:
        if exc.status == 401:
            await throttle.failed(address)
        raise
    return LoginResponse(
        jwt=result.jwt, payload=result.payload, accepted_scopes=result.accepted_scopes
    )


def client_address(request: Request) -> str:
    """Whom failed logins are counted against: the peer's address, or the client a trusted proxy
    names (REGISTRAR_TRUSTED_PROXIES, applied before this runs); an IPv6 client's /64, since one
    host commonly holds a whole /64."""
    host = request.client.host if request.client else "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:255]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


@router.get(
    "/api/jwks",
    response_model=JWKS,
    summary="The public keys that verify the service's tokens",
)
async def get_jwks(runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(
        await runtime.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )
