"""Every response carries a correlation id and the security headers; CORS is off unless an
operator names origins."""

from __future__ import annotations

from fastapi.testclient import TestClient

from registrar.app import create_app
from tests.support.databases import make_settings

ENROLLMENTS = "/api/academic/enrollments"


def test_every_response_has_a_correlation_id(api: TestClient) -> None:
    generated = api.get("/health")
    assert len(generated.headers["X-Correlation-ID"]) == 32
    echoed = api.get(ENROLLMENTS, headers={"X-Correlation-ID": "abc-123.x"})
    assert echoed.status_code == 401
    assert echoed.headers["X-Correlation-ID"] == "abc-123.x"
    # Not plain: replaced, never echoed (no header or log injection).
    odd = api.get("/health", headers={"X-Correlation-ID": "a b\tc" + "x" * 200})
    assert odd.headers["X-Correlation-ID"] != "a b\tc" + "x" * 200
    assert len(odd.headers["X-Correlation-ID"]) == 32


def test_security_headers(api: TestClient, all_scopes: dict[str, str]) -> None:
    for response in (
        api.get(ENROLLMENTS, headers=all_scopes),
        api.get(ENROLLMENTS),
        api.get("/no/such/path"),
        api.get("/health"),
    ):
        h = response.headers
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Cache-Control"] == "no-store"
        assert h["Content-Security-Policy"].startswith("default-src 'none'")
    jwks = api.get("/api/jwks")
    assert jwks.headers["Cache-Control"].startswith("public")  # public keys may be cached
    docs = api.get("/docs")
    assert docs.status_code == 200
    policy = docs.headers["Content-Security-Policy"]
    # Swagger UI and ReDoc come from this process: scripts from 'self' only, no CDN, no inline.
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "http" not in policy


def test_cors_is_off_unless_configured(api: TestClient, database_url: str) -> None:
    preflight = {"Origin": "https://app.example.edu", "Access-Control-Request-Method": "GET"}
    off = api.options(ENROLLMENTS, headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    settings = make_settings(
        database_url, cors_origins=["https://app.example.edu"], run_worker=False
    )
    with TestClient(create_app(settings)) as client:
        pre = client.options(
            ENROLLMENTS, headers={**preflight, "Access-Control-Request-Headers": "Authorization"}
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example.edu"
        simple = client.get(ENROLLMENTS, headers={"Origin": "https://app.example.edu"})
        exposed = simple.headers["access-control-expose-headers"]
        for name in ("X-Request-ID", "X-Total-Count", "Link", "Location", "RateLimit-Remaining"):
            assert name in exposed
        other = client.get(ENROLLMENTS, headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers
