"""Schemathesis against the app's own OpenAPI: no 500, and every answer matches what is documented.

The app runs in a real uvicorn server (lifespan, migrations and all) on a free port, because the
database pools belong to the server's event loop: an in-process ASGI client would call the app
from other loops. Bounded and reproducible: `max_examples` per operation, derandomized.
Tokens carry every scope, so each operation gets past 401/403 and is exercised for real; the 401
and 403 paths are covered by the unit suites.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationConfig, HeaderConfig

from registrar.auth.scopes import ALL_SCOPES
from tests.support.accounts import Accounts
from tests.support.servers import real_server


def _legacy_many_shim() -> None:
    """hypothesis-jsonschema 0.23 drives `cu.many` with the old `while elements.more()` protocol,
    which this Hypothesis replaced by `with many(...) as e: for _ in e:`. Adapt, for its module."""
    import types

    import hypothesis_jsonschema._from_schema as hjs
    from hypothesis.internal.conjecture import utils as cu

    if hasattr(cu.many, "more"):
        return

    class LegacyMany:
        def __init__(self, data: Any, **kwargs: Any) -> None:
            self._many = cu.many(data, **kwargs)
            self._many.__enter__()
            self._it = iter(self._many)

        def more(self) -> bool:
            try:
                next(self._it)
            except StopIteration:
                self._many.__exit__(None, None, None)
                return False
            return True

        def reject(self, why: str | None = None) -> None:
            self._many.reject(why)

    hjs.cu = types.SimpleNamespace(**{**vars(cu), "many": LegacyMany})  # type: ignore[attr-defined]


_legacy_many_shim()

# FastAPI emits OpenAPI 3.1; schemathesis 3.x checks it behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()

MAX_EXAMPLES = int(os.environ.get("REGISTRAR_SCHEMATHESIS_EXAMPLES", "25"))


def app_content_type_conformance(ctx: Any, response: Any, case: schemathesis.Case) -> Any:
    """content_type_conformance, except for uvicorn's own protocol-level refusal (text/plain 400
    "Invalid HTTP request received."), which is sent before the request reaches the app."""
    if response.status_code == 400 and response.text == "Invalid HTTP request received.":
        return None
    return content_type_conformance(ctx, response, case)


CHECKS = (
    not_a_server_error,
    status_code_conformance,
    app_content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
)

KNOWN_SEEN: list[str] = []

# Every generated case is also sent with one of these Host headers: each must be refused with a
# 400, never a 500 (issue 9: `Host: [::1` broke the URL building of collections and PATCH).
MALFORMED_HOSTS = (
    "[::1",
    "[::1]:x",
    "x:99999999",
    "a b",
    "example.edu/p",
    "..",
    "h@st",
    "[1.2.3.4]",
)


def malformed_host_is_refused(case: schemathesis.Case, headers: dict[str, str]) -> None:
    pick = zlib.crc32(repr((case.method, case.path, case.query, case.path_parameters)).encode())
    host = MALFORMED_HOSTS[pick % len(MALFORMED_HOSTS)]
    response = case.call(headers={**headers, "Host": host}, timeout=30)
    assert response.status_code == 400, (host, response.status_code, response.text[:300])


# Failures found by this run in code owned elsewhere, kept visible (xfail) until fixed there.
KNOWN_ISSUES: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def server_port(database_url: str) -> Iterator[int]:
    with real_server(database_url) as port:
        yield port


@pytest.fixture(scope="module")
def bearer(accounts: Accounts) -> dict[str, str]:
    return accounts.headers(list(ALL_SCOPES), sub="svc-fuzz")


@pytest.fixture(scope="module")
def api_schema(server_port: int) -> schemathesis.BaseSchema:
    return schemathesis.from_uri(
        f"http://127.0.0.1:{server_port}/openapi.json",
        base_url=f"http://127.0.0.1:{server_port}",
    )


# Header values a real HTTP server accepts: visible ASCII. Others (control characters) are refused
# by uvicorn itself with a text/plain 400 before the app sees them, which says nothing of the app.
GENERATION = GenerationConfig(
    headers=HeaderConfig(
        strategy=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)
    )
)

schema = schemathesis.from_pytest_fixture("api_schema", generation_config=GENERATION)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_keeps_its_documented_contract(case: schemathesis.Case, bearer: dict[str, str]) -> None:
    headers = dict(case.headers or {})
    if case.path != "/api/jwt":  # the login service takes the raw API key, which we fuzz
        headers.update(bearer)
    known = KNOWN_ISSUES.get((case.method.upper(), case.path))
    try:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
    except Exception as exc:  # CheckFailed, or the connection dropped by the server
        if not known:
            raise
        # Not failed inside Hypothesis (it would shrink and re-raise); reported by the test below.
        KNOWN_SEEN.append(f"{case.method} {case.formatted_path}: {type(exc).__name__}")
    malformed_host_is_refused(case, headers)


@pytest.fixture(scope="module")
def reader_bearer(accounts: Accounts) -> dict[str, str]:
    return accounts.headers(["api:academic:enrollments:read"], sub="svc-fuzz-reader")


@schema.parametrize()
@settings(
    max_examples=max(5, MAX_EXAMPLES // 3),
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_contract_holds_for_a_narrow_token(
    case: schemathesis.Case, reader_bearer: dict[str, str]
) -> None:
    """Another scope set: most operations now answer 403, which must be documented too."""
    headers = dict(case.headers or {})
    if case.path != "/api/jwt":
        headers.update(reader_bearer)
    known = KNOWN_ISSUES.get((case.method.upper(), case.path))
    try:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
    except Exception as exc:
        if not known:
            raise
        KNOWN_SEEN.append(f"{case.method} {case.formatted_path}: {type(exc).__name__}")
    malformed_host_is_refused(case, headers)


def test_known_issues_elsewhere() -> None:
    """XFAIL while a known issue still reproduces; passes once the owners fixed it."""
    if KNOWN_SEEN:
        pytest.xfail("; ".join(sorted(set(KNOWN_SEEN))[:5]))
