"""The login service: exchange an API key for a JWT; publish the public keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from registrar.auth.schemas import JWKS, LoginResponse
from registrar.auth.service import login
from registrar.core.problems import unauthorized
from registrar.http.dependencies import RuntimeDep
from registrar.http.problems import problem_responses

router = APIRouter(tags=["login service"])


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
    responses=problem_responses(400, 401),
)
async def post_jwt(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header(description="The raw API key")] = None,
    scope: Annotated[
        str | None, Query(description="Scopes wanted, space or comma separated")
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
