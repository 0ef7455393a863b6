"""The login service over HTTP: API key in, JWT out; and every bad token is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    PEOPLE_PRIVATE,
)
from tests.support.accounts import Accounts, cli

PROTECTED = "/api/academic/enrollments"


def test_login_returns_jwt_payload_and_all_granted_scopes(
    api: TestClient, accounts: Accounts
) -> None:
    key = accounts.key("svc-login", [ENROLLMENTS_READ, PEOPLE_PRIVATE])
    response = api.post("/api/jwt", headers={"Authorization": key})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"jwt", "payload", "accepted_scopes"}
    assert body["accepted_scopes"] == [ENROLLMENTS_READ, PEOPLE_PRIVATE]
    claims = body["payload"]
    assert claims["sub"] == "svc-login"
    assert claims["scope"] == f"{ENROLLMENTS_READ},{PEOPLE_PRIVATE}"
    assert {"name", "email", "iat", "exp", "iss", "aud", "jti"} <= set(claims)
    assert isinstance(claims["exp"], int) and claims["exp"] > claims["iat"]
    header = jwt.get_unverified_header(body["jwt"])
    assert header["alg"] == "EdDSA" and header["kid"]


def test_requested_scopes_not_granted_are_left_out(api: TestClient, accounts: Accounts) -> None:
    key = accounts.key("svc-login", [ENROLLMENTS_READ, PEOPLE_PRIVATE])
    for scope in (
        f"{ENROLLMENTS_READ} {ENROLLMENTS_READ_SENSITIVE}",
        f"{ENROLLMENTS_READ},{ENROLLMENTS_READ_SENSITIVE}",
    ):
        response = api.post("/api/jwt", params={"scope": scope}, headers={"Authorization": key})
        assert response.status_code == 200
        assert response.json()["accepted_scopes"] == [ENROLLMENTS_READ]
        assert response.json()["payload"]["scope"] == ENROLLMENTS_READ


@pytest.mark.parametrize("header", [None, "", "rk_not-a-real-key", "Bearer rk_nope", "x" * 5000])
def test_unknown_or_missing_key_is_401(api: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = api.post("/api/jwt", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_revoked_key_is_401(api: TestClient, accounts: Accounts, database_url: str) -> None:
    key = accounts.key("svc-revoked", [ENROLLMENTS_READ])
    assert api.post("/api/jwt", headers={"Authorization": key}).status_code == 200
    code, _out, _err = cli(database_url, "clients", "revoke", "svc-revoked")
    assert code == 0
    assert api.post("/api/jwt", headers={"Authorization": key}).status_code == 401


def test_jwks_publishes_public_keys_only(api: TestClient) -> None:
    response = api.get("/api/jwks")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in keys)
    assert all("d" not in k for k in keys)


def test_token_from_login_verifies_with_jwks(api: TestClient, accounts: Accounts) -> None:
    token = accounts.token("svc-login", [ENROLLMENTS_READ])
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in api.get("/api/jwks").json()["keys"] if k["kid"] == kid)
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        token,
        public,
        algorithms=["EdDSA"],
        audience=jwt.decode(token, options={"verify_signature": False})["aud"],
    )
    assert claims["sub"] == "svc-login"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forge(claims: dict[str, object], header: dict[str, object]) -> str:
    return f"{_b64(header)}.{_b64(claims)}."


@pytest.fixture(scope="module")
def good_token(accounts: Accounts) -> str:
    return accounts.token("svc-reader", [ENROLLMENTS_READ])


def _claims(good_token: str) -> dict[str, object]:
    return dict(jwt.decode(good_token, options={"verify_signature": False}))


def test_good_token_is_accepted(api: TestClient, good_token: str) -> None:
    response = api.get(PROTECTED, headers={"Authorization": f"Bearer {good_token}"})
    assert response.status_code == 200


def _assert_401(api: TestClient, token: str) -> None:
    response = api.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")


def test_alg_none_is_rejected(api: TestClient, good_token: str) -> None:
    kid = jwt.get_unverified_header(good_token)["kid"]
    _assert_401(api, _forge(_claims(good_token), {"alg": "none", "typ": "JWT", "kid": kid}))


def test_hs256_with_guessed_or_public_key_secret_is_rejected(
    api: TestClient, good_token: str
) -> None:
    kid = jwt.get_unverified_header(good_token)["kid"]
    jwk = next(k for k in api.get("/api/jwks").json()["keys"] if k["kid"] == kid)
    for secret in ("secret", jwk["x"], json.dumps(jwk)):
        # Signed by hand: PyJWT itself refuses to use a public key as an HMAC secret.
        signing_input = (
            f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(_claims(good_token))}"
        )
        mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        _assert_401(api, forged)


def test_token_signed_by_a_foreign_key_is_rejected(api: TestClient, good_token: str) -> None:
    kid = jwt.get_unverified_header(good_token)["kid"]
    foreign = Ed25519PrivateKey.generate()
    _assert_401(
        api, jwt.encode(_claims(good_token), foreign, algorithm="EdDSA", headers={"kid": kid})
    )
    _assert_401(
        api,
        jwt.encode(
            _claims(good_token), foreign, algorithm="EdDSA", headers={"kid": "someone-else"}
        ),
    )


def test_swapped_claims_break_the_signature(api: TestClient, good_token: str) -> None:
    header, _payload, signature = good_token.split(".")
    claims = _claims(good_token)
    claims["scope"] = ",".join([ENROLLMENTS_READ, ENROLLMENTS_READ_SENSITIVE, PEOPLE_PRIVATE])
    claims["sub"] = "someone-else"
    _assert_401(api, f"{header}.{_b64(claims)}.{signature}")


def test_expired_wrong_issuer_and_wrong_audience_are_rejected(
    api: TestClient, good_token: str
) -> None:
    # Changed claims under the original signature: the signature no longer matches, whatever
    # the change (a genuinely expired token is tested below with a negative lifetime).
    header, _payload, signature = good_token.split(".")
    for mutate in ({"exp": int(time.time()) - 3600}, {"iss": "evil"}, {"aud": "other-api"}):
        claims = {**_claims(good_token), **mutate}
        _assert_401(api, f"{header}.{_b64(claims)}.{signature}")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer not.a.jwt",
        "Bearer a.b",
        "Basic dXNlcjpwYXNz",
        "Bearer " + "A" * 9000,
        "Bearer \u00e9\u00e9.\u00e9.\u00e9",
    ],
)
def test_malformed_authorization_headers_are_401(api: TestClient, value: str) -> None:
    try:
        response = api.get(PROTECTED, headers={"Authorization": value})
    except UnicodeEncodeError:
        pytest.skip("the HTTP client cannot send this header")
    assert response.status_code == 401


def test_missing_scope_is_403(api: TestClient, accounts: Accounts) -> None:
    headers = accounts.headers([PEOPLE_PRIVATE], sub="svc-private-only")
    response = api.get(PROTECTED, headers=headers)
    assert response.status_code == 403
    assert ENROLLMENTS_READ in " ".join(response.json()["errors"])


def test_expired_token_signed_by_the_service_is_401(database_url: str, accounts: Accounts) -> None:
    from registrar.app import create_app
    from tests.support.databases import make_settings

    key = accounts.key("svc-short", [ENROLLMENTS_READ])
    short = make_settings(
        database_url, token_lifetime_seconds=-120, token_leeway_seconds=0, run_worker=False
    )
    with TestClient(create_app(short)) as short_api:
        token = short_api.post("/api/jwt", headers={"Authorization": key}).json()["jwt"]
        _assert_401(short_api, token)


def test_tokens_survive_restart_and_key_rotation(
    database_url: str, accounts: Accounts, api: TestClient
) -> None:
    from registrar.app import create_app
    from tests.support.databases import make_settings

    old = accounts.token("svc-rotate", [ENROLLMENTS_READ])
    code, out, _ = cli(database_url, "keys", "rotate")
    assert code == 0 and out.startswith("new signing key")
    with TestClient(create_app(make_settings(database_url, run_worker=False))) as restarted:
        # The old token still verifies in a new process; new tokens use the new key.
        assert (
            restarted.get(PROTECTED, headers={"Authorization": f"Bearer {old}"}).status_code == 200
        )
        new = restarted.post("/api/jwt", headers={"Authorization": accounts.key("svc-rotate", [])})
        new_kid = jwt.get_unverified_header(new.json()["jwt"])["kid"]
        assert new_kid != jwt.get_unverified_header(old)["kid"]
        assert new_kid == out.split()[-1]
        kids = {k["kid"] for k in restarted.get("/api/jwks").json()["keys"]}
        assert {new_kid, jwt.get_unverified_header(old)["kid"]} <= kids
