"""Issuing and checking the login service's JWTs."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from registrar.auth.client import Client
from registrar.auth.scopes import parse_scopes
from registrar.auth.signing import ALGORITHM, KeyRing
from registrar.core.problems import unauthorized
from registrar.core.settings import Settings


async def issue_token(
    keyring: KeyRing, settings: Settings, *, sub: str, name: str, email: str, scopes: list[str]
) -> tuple[str, dict[str, Any]]:
    loaded = await keyring.current()
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "name": name,
        "email": email,
        "scope": ",".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + settings.token_lifetime_seconds,
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "jti": secrets.token_hex(12),
    }
    token = jwt.encode(
        claims, loaded.signing_key, algorithm=ALGORITHM, headers={"kid": loaded.signing_kid}
    )
    return token, claims


MAX_VERIFIED = 10_000


async def verify_token(keyring: KeyRing, settings: Settings, token: str) -> Client:
    # A JWT cannot change, so one signature check per token and process is enough: the keyring
    # remembers what it verified until the token expires (the check is the dearest part of a
    # request after the database).
    entry = keyring.verified.get(token)
    if entry is not None:
        client, exp = entry
        if exp + settings.token_leeway_seconds >= time.time():
            return client
        keyring.verified.pop(token, None)
    client = await _verify_token(keyring, settings, token)
    if len(keyring.verified) >= MAX_VERIFIED:
        keyring.verified.clear()  # crude but bounded: a cold cache only costs re-verification
    keyring.verified[token] = (client, float(client.claims["exp"]))
    return client


async def _verify_token(keyring: KeyRing, settings: Settings, token: str) -> Client:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise unauthorized("The token is malformed.") from None
    # Only our algorithm, decided before any key is touched: no "none", no HS256-with-public-key.
    if header.get("alg") != ALGORITHM:
        raise unauthorized("The token's algorithm is not accepted.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise unauthorized("The token names no signing key.")
    key = await keyring.verification_key(kid)
    if key is None:
        raise unauthorized("The token was not signed by this service.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.token_audience,
            issuer=settings.token_issuer,
            leeway=settings.token_leeway_seconds,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("The token has expired.") from None
    except jwt.InvalidSignatureError:
        raise unauthorized("The token's signature is not valid.") from None
    except jwt.PyJWTError as exc:
        raise unauthorized(f"The token is not valid: {exc}.") from None
    scope = claims.get("scope", "")
    if not isinstance(scope, str) or not isinstance(claims.get("sub"), str):
        raise unauthorized("The token's claims are malformed.")
    return Client(
        sub=claims["sub"],
        name=str(claims.get("name", "")),
        email=str(claims.get("email", "")),
        scopes=frozenset(parse_scopes(scope)),
        claims=claims,
    )
