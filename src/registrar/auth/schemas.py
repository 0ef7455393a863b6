from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LoginResponse(BaseModel):
    jwt: str = Field(description="The signed token; send it as `Authorization: Bearer <jwt>`.")
    payload: dict[str, Any] = Field(description="The token's claims.")
    accepted_scopes: list[str] = Field(description="The requested scopes that were granted.")


class JWK(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JWKS(BaseModel):
    keys: list[JWK]
