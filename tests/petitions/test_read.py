"""GET /api/academic/petitions[/{id}], /api/students/{netid}/petitions: filters, paging, FERPA."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from registrar.auth.scopes import PEOPLE_PRIVATE, PETITIONS_READ, PETITIONS_WRITE
from tests.support.accounts import Accounts
from tests.support.seeding import CONFIDENTIAL_PETITIONER as CONFIDENTIAL
from tests.support.seeding import PETITION_KEYS as KEYS

URL = "/api/academic/petitions"


@pytest.fixture(scope="module")
def reader(accounts: Accounts, petitions: Any) -> dict[str, str]:
    return accounts.headers([PETITIONS_READ], sub="petition-reader")


@pytest.fixture(scope="module")
def private(accounts: Accounts, petitions: Any) -> dict[str, str]:
    return accounts.headers([PETITIONS_READ, PEOPLE_PRIVATE], sub="petition-private")


def get_all(api: TestClient, headers: dict[str, str], url: str = URL, **params: Any) -> list[Any]:
    r = api.get(url, params={"pagesize": 1000, **params}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list)
    assert int(r.headers["x-total-count"]) == len(body)
    return body


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in rows}


def visible(petitions: list[dict[str, Any]]) -> set[str]:
    return {p["id"] for p in petitions if p["netid"] != CONFIDENTIAL}


def test_scopes(api: TestClient, accounts: Accounts, petitions: Any) -> None:
    assert api.get(URL).status_code == 401
    assert api.get(f"{URL}/{petitions[0]['id']}").status_code == 401
    assert api.get("/api/students/f001abc/petitions").status_code == 401
    writer = accounts.headers([PETITIONS_WRITE], sub="writer-only")
    for url in (URL, f"{URL}/{petitions[0]['id']}", "/api/students/f001abc/petitions"):
        assert api.get(url, headers=writer).status_code == 403


def test_representation(
    api: TestClient, reader: dict[str, str], petitions: list[dict[str, Any]]
) -> None:
    r = api.get(f"{URL}/{petitions[0]['id']}", headers=reader)
    assert r.status_code == 200
    assert r.json() == {
        "id": petitions[0]["id"],
        "netid": "f001abc",
        "petition_code": "Q14",
        "petition_name": "Additional 2-Course Load",
        "origin_code": "UREG",
        "origin_name": "UG - Registrar",
        "school": "UG",
        "decision": "IDP 001",
        "grade_term": "23F",
        "effective_date": "2024-11-21T20:54:27Z",
        "cache_date": "2024-11-20T20:54:27Z",
    }
    assert list(r.json()) == KEYS


@pytest.mark.parametrize("bad", ["nope", "0" * 23, "0" * 25, "G" * 24, "%00", "x" * 5000])
def test_unknown_ids_are_404(api: TestClient, reader: dict[str, str], bad: str) -> None:
    r = api.get(f"{URL}/{bad}", headers=reader)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_confidential_petitions_are_hidden(
    api: TestClient,
    reader: dict[str, str],
    private: dict[str, str],
    petitions: list[dict[str, Any]],
) -> None:
    hidden = next(p for p in petitions if p["netid"] == CONFIDENTIAL)
    assert api.get(f"{URL}/{hidden['id']}", headers=reader).status_code == 404
    assert api.get(f"{URL}/{hidden['id']}", headers=private).status_code == 200
    assert ids(get_all(api, reader)) == visible(petitions)
    assert ids(get_all(api, private)) == {p["id"] for p in petitions}
    # A filter on the hidden netid reveals nothing, neither does the student route.
    assert get_all(api, reader, netid=CONFIDENTIAL) == []
    assert get_all(api, reader, f"/api/students/{CONFIDENTIAL}/petitions") == []
    assert len(get_all(api, private, f"/api/students/{CONFIDENTIAL}/petitions")) == 4


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"netid": "f001abc"}, lambda p: p["netid"] == "f001abc"),
        ({"petition_code": "Q25"}, lambda p: p["petition_code"] == "Q25"),
        ({"petition_code": "Q14,Q41"}, lambda p: p["petition_code"] in ("Q14", "Q41")),
        ({"petition_code": "!Q14"}, lambda p: p["petition_code"] != "Q14"),
        ({"petition_name": "Reduce*"}, lambda p: p["petition_code"] == "Q25"),
        ({"origin_code": "UDEAN"}, lambda p: p["origin_code"] == "UDEAN"),
        ({"origin_name": "UG - Registrar"}, lambda p: p["origin_code"] == "UREG"),
        ({"school": "UG"}, lambda p: True),
        ({"decision": "null"}, lambda p: p["decision"] is None),
        ({"decision": "IDP 00*"}, lambda p: (p["decision"] or "").startswith("IDP 00")),
        ({"grade_term": "24W*"}, lambda p: p["grade_term"].startswith("24W")),
        ({"grade_term": "24W\\=L"}, lambda p: p["grade_term"] == "24W=L"),
        ({"grade_term": ">=24S"}, lambda p: p["grade_term"] >= "24S"),
        ({"effective_date": "<2024-11-24T00:00:00Z"}, lambda p: p["effective_date"].day < 24),
        ({"cache_date": "2024-11-20T20:54:27Z"}, lambda p: True),
        ({"id": "00000000000000000000000*"}, lambda p: p["id"].startswith("0" * 23)),
    ],
)
def test_filters(
    api: TestClient,
    reader: dict[str, str],
    petitions: list[dict[str, Any]],
    params: dict[str, str],
    expected: Any,
) -> None:
    want = {p["id"] for p in petitions if p["netid"] != CONFIDENTIAL and expected(p)}
    assert ids(get_all(api, reader, **params)) == want


def test_ranges_and_unknown_parameters(
    api: TestClient, reader: dict[str, str], petitions: list[dict[str, Any]]
) -> None:
    r = api.get(
        URL,
        params=[("grade_term", ">23F"), ("grade_term", "<24W=L"), ("color", "red")],
        headers=reader,
    )
    assert r.status_code == 200
    assert {p["grade_term"] for p in r.json()} == {"24S", "24W"}
    assert r.headers["x-ignored-parameters"] == "color"
    assert api.get(URL, params={"effective_date": "yesterday"}, headers=reader).status_code == 400


def test_paging_with_a_continuation_key(
    api: TestClient, reader: dict[str, str], petitions: list[dict[str, Any]]
) -> None:
    first = api.get(URL, params={"pagesize": 3}, headers=reader)
    assert first.status_code == 200
    assert first.headers["x-total-count"] == str(len(visible(petitions)))
    key = first.headers["x-request-id"]
    seen = [p["id"] for p in first.json()]
    link = first.headers["link"]
    assert 'rel="next"' in link
    page = 2
    while True:
        r = api.get(
            URL, params={"continuation_key": key, "page": page, "pagesize": 3}, headers=reader
        )
        assert r.status_code == 200
        if not r.json():
            break
        seen += [p["id"] for p in r.json()]
        page += 1
    assert seen == sorted(visible(petitions))  # ids were inserted in order: the found set's order
    # The Link header's cursor URL pages the same set.
    next_url = link.split(">", 1)[0].lstrip("<")
    query = parse_qs(urlsplit(next_url).query)
    r = api.get(URL, params={k: v[0] for k, v in query.items()}, headers=reader)
    assert [p["id"] for p in r.json()] == seen[3:6]
    assert api.get(URL, params={"continuation_key": "forged"}, headers=reader).status_code == 400
    assert api.get(URL, params={"pagesize": 0}, headers=reader).status_code == 400


def test_student_route(
    api: TestClient, reader: dict[str, str], petitions: list[dict[str, Any]]
) -> None:
    mine = {p["id"] for p in petitions if p["netid"] == "f002xyz"}
    assert ids(get_all(api, reader, "/api/students/f002xyz/petitions")) == mine
    assert ids(get_all(api, reader, "/api/students/F002XYZ/petitions")) == mine
    narrowed = get_all(api, reader, "/api/students/f002xyz/petitions", petition_code="Q41")
    assert [p["petition_code"] for p in narrowed] == ["Q41"]
    # Filter grammar characters in the path are literal.
    for odd in ("f00*", "f001abc,f002xyz", "<f002xyz", "!f001abc", "nobody"):
        assert get_all(api, reader, f"/api/students/{odd}/petitions") == []
    r = api.get("/api/students/f002xyz/petitions", params={"pagesize": 2}, headers=reader)
    key = r.headers["x-request-id"]
    r2 = api.get(
        "/api/students/f002xyz/petitions",
        params={"continuation_key": key, "page": 2, "pagesize": 2},
        headers=reader,
    )
    assert ids(r.json()) | ids(r2.json()) == mine


def test_student_route_names_a_query_netid_as_ignored(
    api: TestClient, reader: dict[str, str], petitions: list[dict[str, Any]]
) -> None:
    mine = {p["id"] for p in petitions if p["netid"] == "f002xyz"}
    r = api.get("/api/students/f002xyz/petitions", params={"netid": "x"}, headers=reader)
    assert r.status_code == 200
    assert ids(r.json()) == mine  # the path decides whose petitions these are
    assert r.headers["x-ignored-parameters"] == "netid"
    r = api.get(
        "/api/students/f002xyz/petitions", params={"netid": "x", "color": "y"}, headers=reader
    )
    assert r.headers["x-ignored-parameters"] == "netid,color"


@pytest.mark.parametrize("odd", ["a%00b", "a%0Ab", "x" * 65, "%7F"])
def test_a_netid_no_one_can_have_is_a_student_without_petitions(
    api: TestClient, reader: dict[str, str], odd: str
) -> None:
    """Not a 400 about the filter grammar: the contract's answer for an unknown student."""
    r = api.get(f"/api/students/{odd}/petitions", headers=reader)
    assert r.status_code == 200, r.text
    assert r.json() == [] and r.headers["x-total-count"] == "0"


def test_openapi_lists_the_read_routes(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert {URL, URL + "/{petition_id}", "/api/students/{netid}/petitions"} <= set(paths)
    names = {p["name"] for p in paths[URL]["get"]["parameters"]}
    assert {"netid", "petition_name", "origin_name", "grade_term", "pagesize"} <= names
