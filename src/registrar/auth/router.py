"""The login service: exchange an API key for a JWT; publish the public keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from registrar.auth.schemas import JWKS, LoginResponse
from registrar.auth.service import login
from registrar.core.problems import unauthorized
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
        "granted scope."
    ),
)
async def post_jwt(
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
    key = (authorization or "").strip()
    if key.lower().startswith("bearer "):
        key = key[7:].strip()
    if not key or len(key) > 512:
        raise unauthorized("An API key is required in the Authorization header.")
    result = await login(runtime.db, runtime.keyring, runtime.settings, key, scope)
    return LoginResponse(
        jwt=result.jwt, payload=result.payload, accepted_scopes=result.accepted_scopes
    )


@router.get(
    "/api/jwks",
    response_model=JWKS,
    summary="The public keys that verify the service's tokens",
)
async def get_jwks(runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(
        await runtime.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )
