"""The Host header, attacked: a malformed one is a 400 on every route (issue 9: `Host: [::1` was a
500 on collections and PATCH), REGISTRAR_ALLOWED_HOSTS refuses the others, and with
REGISTRAR_PUBLIC_URL no absolute link the service gives out echoes the Host at all."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from registrar.app import create_app
from registrar.auth.scopes import ALL_SCOPES
from registrar.core.settings import Settings
from tests.support.accounts import Accounts
from tests.support.databases import make_settings
from tests.support.seeding import seed_known_enrollments
from tests.support.servers import real_server
from tests.support.tasks import JSON, patch_body, wait_task

ENROLLMENTS = "/api/academic/enrollments"

MALFORMED = [
    "[::1",
    "[::1]]",
    "[::1]:x",
    "[1.2.3.4]",
    "[fe80::1%eth0]",
    "x:99999999",
    "x:65536",
    "x:",
    ":80",
    "a b",
    "exa\tmple.edu",
    "..",
    "-lead.example.edu",
    "user@example.edu",
    "example.edu/path",
    "example.edu?q",
    "example.edu#f",
    "example.edu:80:80",
    "a" * 64 + ".example.edu",
    ("a" * 60 + ".") * 5 + "edu",
    '"example.edu"',
    "exam%70le.edu",
]
WELL_FORMED = ["example.edu", "EXAMPLE.edu.", "example.edu:8443", "127.0.0.1:8000", "[::1]:8000"]


@pytest.fixture(scope="module")
def enrollment_id(api: TestClient, settings: Settings) -> str:
    rows = seed_known_enrollments(settings)
    return str(next(e["id"] for e in rows if e["netid"] == "f001nkx"))


def requests_of(enrollment_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx keywords): a read, a collection, each write, a task, the login."""
    body = patch_body("2020-03-05T17:53:46Z")
    return [
        ("GET", ENROLLMENTS, {}),
        ("GET", f"{ENROLLMENTS}/{enrollment_id}", {}),
        ("PATCH", f"{ENROLLMENTS}/{enrollment_id}", {"json": body}),
        ("POST", "/api/academic/petitions", {"json": {"petition": {}}}),
        ("GET", "/api/academic/petitions", {}),
        ("GET", "/api/students/f001nkx/petitions", {}),
        ("GET", "/api/tasks/" + "0" * 24, {}),
        ("POST", "/api/jwt", {}),
        ("GET", "/health", {}),
        ("GET", "/api/nowhere", {}),
    ]


@pytest.mark.parametrize("host", MALFORMED)
def test_a_malformed_host_is_400_everywhere(
    api: TestClient, all_scopes: dict[str, str], enrollment_id: str, host: str
) -> None:
    for method, path, kw in requests_of(enrollment_id):
        response = api.request(method, path, headers={**all_scopes, **JSON, "Host": host}, **kw)
        assert response.status_code == 400, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/invalid-host")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "x-correlation-id" in response.headers
        assert host not in response.text  # not echoed


@pytest.mark.parametrize("host", WELL_FORMED)
def test_a_well_formed_host_is_served_and_its_links_parse(
    api: TestClient, all_scopes: dict[str, str], enrollment_id: str, host: str
) -> None:
    response = api.get(ENROLLMENTS, headers={**all_scopes, "Host": host})
    assert response.status_code == 200
    first = response.headers["Link"].split(">", 1)[0][1:]
    assert urlsplit(first).netloc == host


def test_two_host_headers_are_400(api: TestClient, all_scopes: dict[str, str]) -> None:
    headers = [*all_scopes.items(), ("Host", "example.edu"), ("Host", "evil.example")]
    response = api.get(ENROLLMENTS, headers=headers)
    assert response.status_code == 400


@given(host=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80))
@example(host="[::1")
@example(host="[::ffff:1.2.3.4]:1")
@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_host_is_refused_or_gives_links_that_parse(
    api: TestClient, all_scopes: dict[str, str], host: str
) -> None:
    """Whatever the Host, the answer is 400 or a page whose links are URLs naming that host."""
    response = api.get(ENROLLMENTS, headers={**all_scopes, "Host": host})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        for link in response.headers["Link"].split(", "):
            parts = urlsplit(link.split(">", 1)[0][1:])
            assert parts.netloc.lower() == host.lower()
            assert parts.hostname and parts.path == ENROLLMENTS
            _ = parts.port  # raises for a bad port


def test_a_non_ascii_host_over_a_real_socket_is_refused(database_url: str) -> None:
    with real_server(database_url) as port:
        for raw in (b"\xc3\xa9xample.edu", b"ex\x00ample.edu", b"[::1"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /api/academic/enrollments HTTP/1.1\r\nHost: " + raw + b"\r\n\r\n")
                status_line = s.recv(4096).split(b"\r\n", 1)[0]
            assert status_line.startswith(b"HTTP/1.1 400"), (raw, status_line)


def _http10_status(port: int, path: str) -> bytes:
    """The status line of an HTTP/1.0 GET sent with no Host header at all (HTTP/1.0 allows it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\n\r\n")
        return s.recv(4096).split(b"\r\n", 1)[0]


def test_no_host_is_served_by_default_and_refused_with_allowed_hosts(database_url: str) -> None:
    # By default a request without Host is served (401 here: it carries no token, so it got past
    # the host check); its URLs use the server's own address.
    with real_server(database_url) as port:
        assert _http10_status(port, "/api/academic/enrollments").split(b" ")[1] == b"401"
    # With REGISTRAR_ALLOWED_HOSTS, no Host is not an allowed host: 400. /health still answers.
    with real_server(database_url, allowed_hosts="api.example.edu") as port:
        assert _http10_status(port, "/api/academic/enrollments").split(b" ")[1] == b"400"
        assert _http10_status(port, "/health").split(b" ")[1] == b"200"


# --- REGISTRAR_ALLOWED_HOSTS and REGISTRAR_PUBLIC_URL -----------------------------------------


@pytest.fixture(scope="module")
def strict(database_url: str) -> Iterator[TestClient]:
    settings = make_settings(
        database_url,
        allowed_hosts="api.example.edu, .campus.edu",
        public_url="https://registrar.example.edu/v1/",
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("api.example.edu", 200),
        ("API.EXAMPLE.EDU:443", 200),
        ("campus.edu", 200),
        ("x.y.campus.edu", 200),
        ("evil.example", 400),
        ("example.edu", 400),
        ("notcampus.edu", 400),
        ("api.example.edu.evil.example", 400),
        ("127.0.0.1", 400),
    ],
)
def test_allowed_hosts_refuse_every_other_host(
    strict: TestClient, accounts: Accounts, host: str, status: int
) -> None:
    headers = {**accounts.headers(list(ALL_SCOPES), sub="svc-all"), "Host": host}
    response = strict.get(ENROLLMENTS, headers=headers)
    assert response.status_code == status, response.text
    # A load balancer's health check by address is answered; a malformed host still is not.
    assert strict.get("/health", headers={"Host": host}).status_code == 200
    assert strict.get("/health", headers={"Host": "[::1"}).status_code == 400


def test_with_a_public_url_no_link_echoes_the_host(
    strict: TestClient, accounts: Accounts, enrollment_id: str
) -> None:
    headers = {**accounts.headers(list(ALL_SCOPES), sub="svc-all"), "Host": "x.campus.edu"}
    page = strict.get(ENROLLMENTS, params={"pagesize": 1}, headers=headers)
    assert page.status_code == 200
    links = page.headers["Link"]
    assert "campus" not in links
    assert links.count("<https://registrar.example.edu/v1/api/academic/enrollments?") == 2

    queued = strict.patch(
        f"{ENROLLMENTS}/{enrollment_id}",
        headers={**headers, **JSON},
        json=patch_body("2020-03-05T17:53:46Z"),
    )
    assert queued.status_code == 202
    task = wait_task(strict, queued.headers["Location"], headers)
    assert task["status"] == "complete"
    assert task["path"] == f"https://registrar.example.edu/v1{ENROLLMENTS}/{enrollment_id}"
