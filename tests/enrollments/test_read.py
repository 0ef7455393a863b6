"""GET /api/academic/enrollments[/{id}]: representation, scopes, FERPA, filters, paging."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    PEOPLE_PRIVATE,
)
from registrar.core.settings import Settings
from registrar.enrollments.models import Enrollment
from tests.support.accounts import Accounts
from tests.support.databases import execute

URL = "/api/academic/enrollments"
BASE_KEYS = {
    "cache_date",
    "id",
    "is_active",
    "is_in_session",
    "netid",
    "role",
    "school_id",
    "section",
    "term",
}
SENSITIVE_KEYS = {"final_grade", "credit_hours_earned", "course_assessment"}
SAMPLE = "AAAS.010.01-202001-U-10191-f001nkx-student"


def visible(rows: list[dict[str, Any]], *, private: bool = False) -> list[dict[str, Any]]:
    return [r for r in rows if private or r["netid"] != "f00conf"]


def get_all(api: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = api.get(URL, params={"pagesize": 1000, **params}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    assert int(response.headers["x-total-count"]) == len(body)
    return body


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in rows}


# --- by id -------------------------------------------------------------------------------------


def test_by_id_has_exactly_the_seed_keys(api: TestClient, enrollments: Any, reader: Any) -> None:
    sample = next(e for e in enrollments if e["netid"] == "f001nkx")
    response = api.get(f"{URL}/{sample['id']}", headers=reader)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == BASE_KEYS
    assert body["id"] == f"{body['section']['id']}-{body['netid']}-{body['role']}"
    assert set(body["section"]) == {"id", "lms_section_id", "sis_section_id"}
    assert set(body["term"]) == {"id", "lms_term_id", "sis_ptrm_code", "sis_term_code"}
    assert body["cache_date"] == "2020-06-15T04:43:15Z"


def test_sensitive_scope_adds_sensitive_keys(
    api: TestClient, enrollments: Any, sensitive: Any
) -> None:
    body = api.get(f"{URL}/AAAS.010.01-202001-U-10191-f001nkx-student", headers=sensitive).json()
    assert set(body) == BASE_KEYS | SENSITIVE_KEYS
    assert body["final_grade"] == "A"
    assert body["credit_hours_earned"] == 1
    assert body["course_assessment"] == {
        "submit_date": "2020-03-05T17:53:46Z",
        "opt_out_date": None,
    }
    other = api.get(f"{URL}/COSC.010.01-202001-U-10192-f003abc-student", headers=sensitive).json()
    assert other["course_assessment"] is None


@pytest.mark.parametrize(
    "bad_id",
    [
        "nope",
        "AAAS.010.01-202001-U-10191-f001nkx-teacher",
        "x" * 2000,
        "%00",
        "' OR 1=1 --",
        "..%2f..%2f",
    ],
)
def test_unknown_id_is_404(api: TestClient, enrollments: Any, reader: Any, bad_id: str) -> None:
    response = api.get(f"{URL}/{bad_id}", headers=reader)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_confidential_person_does_not_exist_without_private_scope(
    api: TestClient, enrollments: Any, reader: Any, private: Any
) -> None:
    hidden = next(e["id"] for e in enrollments if e["netid"] == "f00conf")
    missing = api.get(f"{URL}/{hidden}", headers=reader)
    unknown = api.get(f"{URL}/{hidden}x", headers=reader)
    assert missing.status_code == 404
    # The answer for a hidden record is the same as for one that never existed.
    assert missing.json() == unknown.json()
    assert api.get(f"{URL}/{hidden}", headers=private).status_code == 200


def test_no_token_is_401_and_wrong_scope_is_403(
    api: TestClient, enrollments: Any, accounts: Accounts
) -> None:
    assert api.get(URL).status_code == 401
    assert api.get(f"{URL}/{SAMPLE}").status_code == 401
    other = accounts.headers([PEOPLE_PRIVATE], sub="private-only")
    assert api.get(URL, headers=other).status_code == 403
    assert api.get(f"{URL}/{SAMPLE}", headers=other).status_code == 403


# --- collections and filters -------------------------------------------------------------------


def test_collection_hides_confidential_people(
    api: TestClient, enrollments: Any, reader: Any, private: Any
) -> None:
    assert ids(get_all(api, reader)) == ids(visible(enrollments))
    assert ids(get_all(api, private)) == ids(enrollments)


def test_hidden_count_taken_at_another_moment_is_taken_again(
    api: TestClient, enrollments: Any, reader: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two counts of a new found set run at once on two connections. When the second saw a
    newer snapshot than the first (rows arrived in between), it is counted again at the first's."""
    from registrar.paging import pages as collections

    real = collections._count_hidden
    calls: list[int | None] = []

    def racing(connection: Any, spec: Any, conditions: Any, snapshot: int | None) -> Any:
        calls.append(snapshot)
        if snapshot is None:
            newest, _ = real(connection, spec, conditions, None)
            return newest + 7, 10_000  # as if 7 rows, hidden ones among them, arrived since
        return real(connection, spec, conditions, snapshot)

    monkeypatch.setattr(collections, "_count_hidden", racing)
    response = api.get(URL, params={"pagesize": 1000}, headers=reader)
    assert response.status_code == 200
    assert int(response.headers["x-total-count"]) == len(visible(enrollments))
    assert calls[0] is None and isinstance(calls[1], int)


@pytest.mark.parametrize(
    ("params", "expect"),
    [
        ({"netid": "f001nkx"}, lambda e: e["netid"] == "f001nkx"),
        ({"role": "instructor"}, lambda e: e["role"] == "instructor"),
        ({"role": "!instructor"}, lambda e: e["role"] != "instructor"),
        ({"role": "student,instructor"}, lambda e: True),
        ({"term.sis_term_code": "<202001"}, lambda e: e["term_id"] < "202001"),
        ({"term.sis_term_code": "<=202001"}, lambda e: e["term_id"] <= "202001-U"),
        ({"term.sis_term_code": ">202001"}, lambda e: e["term_id"] > "202001-U"),
        ({"term.lms_term_id": "WI20"}, lambda e: e["term_id"] == "202001-U"),
        ({"term.id": "202003-U"}, lambda e: e["term_id"] == "202003-U"),
        ({"section.id": "AAAS.*"}, lambda e: e["section_id"].startswith("AAAS.")),
        ({"section.id": "*-10191"}, lambda e: e["section_id"].endswith("-10191")),
        (
            {"section.lms_section_id": "MATH.010.01-SP20"},
            lambda e: e["section_id"].startswith("MATH") and e["term_id"] == "202003-U",
        ),
        ({"is_active": "true"}, lambda e: e["is_active"]),
        ({"is_in_session": "false"}, lambda e: not e["is_in_session"]),
        ({"school_id": "UG"}, lambda e: True),
        ({"school_id": "null"}, lambda e: False),
        ({"netid": "f004pct%_x"}, lambda e: e["netid"] == "f004pct%_x"),
        ({"netid": "f004pct*"}, lambda e: e["netid"] == "f004pct%_x"),
        ({"netid": "f00_pct%_x"}, lambda e: False),
        ({"netid": "f00%"}, lambda e: False),
        ({"netid": "' OR '1'='1"}, lambda e: False),
        ({"netid": "f001nkx'; DROP TABLE enrollments; --"}, lambda e: False),
        (
            {"id": "AAAS*f001nkx-student"},
            lambda e: e["section_id"].startswith("AAAS") and e["netid"] == "f001nkx",
        ),
    ],
)
def test_filters(
    api: TestClient, enrollments: Any, reader: Any, params: dict[str, str], expect: Any
) -> None:
    assert ids(get_all(api, reader, **params)) == ids(v for v in visible(enrollments) if expect(v))


def test_same_attribute_twice_is_a_range(api: TestClient, enrollments: Any, reader: Any) -> None:
    response = api.get(
        URL,
        params=[
            ("term.sis_term_code", ">201909"),
            ("term.sis_term_code", "<202003"),
            ("pagesize", "1000"),
        ],
        headers=reader,
    )
    assert ids(response.json()) == ids(
        e for e in visible(enrollments) if e["term_id"] == "202001-U"
    )


def test_backslash_makes_operators_and_wildcards_literal(
    api: TestClient, enrollments: Any, reader: Any
) -> None:
    assert get_all(api, reader, netid="\\<f001nkx") == []
    assert get_all(api, reader, netid="f001nk\\*") == []
    assert get_all(api, reader, netid="f001nkx\\,f002nkd") == []
    assert ids(get_all(api, reader, netid="f001nkx,f002nkd")) == ids(
        e for e in enrollments if e["netid"] in ("f001nkx", "f002nkd")
    )


def test_sensitive_filters_with_scope(api: TestClient, enrollments: Any, sensitive: Any) -> None:
    vis = visible(enrollments)
    assert ids(get_all(api, sensitive, final_grade="A")) == ids(
        e for e in vis if e["final_grade"] == "A"
    )
    assert ids(get_all(api, sensitive, final_grade="null")) == ids(
        e for e in vis if e["final_grade"] is None
    )
    assert ids(get_all(api, sensitive, final_grade="!null")) == ids(
        e for e in vis if e["final_grade"] is not None
    )
    assert ids(get_all(api, sensitive, credit_hours_earned=">=1")) == ids(
        e for e in vis if e["credit_hours_earned"]
    )
    assert ids(get_all(api, sensitive, course_assessment="!null")) == ids(
        e for e in vis if e["course_submit_date"]
    )
    assert ids(
        get_all(api, sensitive, **{"course_assessment.submit_date": ">2020-03-01T00:00:00Z"})
    ) == ids(e for e in vis if e["course_submit_date"])
    assert (
        get_all(api, sensitive, **{"course_assessment.submit_date": ">2020-03-06T00:00:00Z"}) == []
    )


@pytest.mark.parametrize(
    "param",
    ["final_grade", "credit_hours_earned", "course_assessment", "course_assessment.submit_date"],
)
def test_filter_on_a_field_the_token_cannot_see_reveals_nothing(
    api: TestClient, enrollments: Any, reader: Any, param: str
) -> None:
    everything = api.get(URL, params={"pagesize": 1000}, headers=reader)
    for value in ("A", "null", "!null", ">=1", "zzz", "2020-03-05T17:53:46Z"):
        response = api.get(URL, params={param: value, "pagesize": 1000}, headers=reader)
        assert response.status_code == 200
        assert response.json() == everything.json()
        assert response.headers["x-total-count"] == everything.headers["x-total-count"]
        assert response.headers["x-ignored-parameters"] == param


def test_unknown_attributes_are_ignored_and_named(
    api: TestClient, enrollments: Any, reader: Any
) -> None:
    response = api.get(
        URL, params={"colour": "blue", "netid": "f001nkx", "term.nope": "1"}, headers=reader
    )
    assert response.status_code == 200
    assert response.headers["x-ignored-parameters"] == "colour,term.nope"
    assert {r["netid"] for r in response.json()} == {"f001nkx"}


@pytest.mark.parametrize(
    "params",
    [
        {"is_active": "yes"},
        {"credit_hours_earned": "1"},
        {"cache_date": "yesterday"},
        {"netid": "a\x00b"},
        {"netid": "x" * 5000},
        {"term.sis_term_code": "<2020*"},
        {"term.sis_term_code": "<1,2"},
        {"is_active": "tru*"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "abc"},
        {"pagesize": "0"},
        {"pagesize": "1001"},
        {"pagesize": "1e3"},
        {"page": "99999999999999999999"},
        {"continuation_key": "nope"},
        {"continuation_key": "a.b"},
        {"cursor": "5"},
        # Issue 9 item 5: these were 500s. An ordering operator on a boolean...
        {"is_active": "<true"},
        {"is_in_session": ">false"},
        {"is_active": "<=true"},
        {"is_in_session": ">=1"},
        # ...and digits `isdigit()` accepts but are not 0-9 (`int()` refuses `²`, reads `٣`).
        {"page": "\u00b2"},
        {"pagesize": "\u00b2"},
        {"page": "\u0663"},
        {"pagesize": "\uff15"},
        {"cursor": "\u00b2"},
        {"credit_hours_earned": "\u0663"},
        {"cache_date": ">\u0662\u0660\u0662\u0660-01-01T00:00:00Z"},
    ],
)
def test_bad_filter_and_paging_values_are_400(
    api: TestClient, enrollments: Any, reader: Any, sensitive: Any, params: dict[str, str]
) -> None:
    headers = sensitive if "credit_hours_earned" in params else reader
    if params.get("credit_hours_earned") == "1":
        params = {"credit_hours_earned": "one"}
    response = api.get(URL, params=params, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"]


def test_a_cursor_not_made_for_the_found_set_is_400(
    api: TestClient, enrollments: Any, reader: Any
) -> None:
    first = api.get(URL, params={"pagesize": 2}, headers=reader)
    key = first.headers["x-request-id"]
    cursor = parse_qs(urlsplit(_next(first) or "").query)["cursor"][0]
    other_key = api.get(URL, params={"pagesize": 2}, headers=reader).headers["x-request-id"]
    for bad in ("\u00b2", "7", cursor[:-3] + "AAA", cursor + "A"):
        response = api.get(URL, params={"continuation_key": key, "cursor": bad}, headers=reader)
        assert response.status_code == 400, bad
        assert response.json()["errors"] == ["cursor: use the one from the Link header"]
    elsewhere = api.get(
        URL, params={"continuation_key": other_key, "cursor": cursor}, headers=reader
    )
    assert elsewhere.status_code == 400
    good = api.get(URL, params={"continuation_key": key, "cursor": cursor}, headers=reader)
    assert good.status_code == 200


def test_one_page_limit_in_the_check_its_message_and_the_openapi_document(
    api: TestClient, enrollments: Any, reader: Any, settings: Settings
) -> None:
    """Issue 11 item 6: `page=99999` said `at most 10000`, `page=0` `from 1 to 10000000`, and
    so did the OpenAPI document's maximum."""
    limit = settings.page_max
    expected = [f"page: from 1 to {limit}"]
    for page in (0, limit + 1, 99999):
        for pagesize in (1, 100, 1000):
            response = api.get(URL, params={"page": page, "pagesize": pagesize}, headers=reader)
            assert response.status_code == 400
            assert response.json()["errors"] == expected
    assert api.get(URL, params={"page": limit, "pagesize": 1000}, headers=reader).json() == []
    document = api.get("/openapi.json").json()
    for path in ("/api/academic/enrollments", "/api/academic/petitions"):
        (page_parameter,) = [
            p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "page"
        ]
        assert page_parameter["schema"]["maximum"] == limit
        assert str(limit) in page_parameter["description"]


# --- paging and found sets ---------------------------------------------------------------------


def _next(response: Any) -> str | None:
    match = re.search(r'<([^>]+)>;\s*rel="next"', response.headers.get("link", ""))
    return match.group(1) if match else None


def test_link_next_walks_the_whole_found_set_once(
    api: TestClient, enrollments: Any, reader: Any
) -> None:
    response = api.get(URL, params={"pagesize": 4}, headers=reader)
    total = int(response.headers["x-total-count"])
    assert total == len(visible(enrollments))
    seen = [r["id"] for r in response.json()]
    pages = 1
    while (link := _next(response)) is not None:
        parts = urlsplit(link)
        response = api.get(f"{parts.path}?{parts.query}", headers=reader)
        assert response.status_code == 200
        assert int(response.headers["x-total-count"]) == total
        seen += [r["id"] for r in response.json()]
        pages += 1
    assert len(seen) == len(set(seen)) == total
    assert pages == -(-total // 4)


def test_continuation_key_pages_by_number_and_ignores_new_filters(
    api: TestClient, enrollments: Any, reader: Any
) -> None:
    first = api.get(URL, params={"pagesize": 3, "role": "student"}, headers=reader)
    key = first.headers["x-request-id"]
    page2 = api.get(
        URL,
        params={"continuation_key": key, "page": 2, "pagesize": 3, "netid": "f002nkd"},
        headers=reader,
    )
    assert page2.status_code == 200
    assert page2.headers["x-ignored-parameters"] == "netid"
    assert all(r["role"] == "student" for r in page2.json())
    whole = get_all(api, reader, role="student")
    assert [r["id"] for r in page2.json()] == [r["id"] for r in whole[3:6]]


def test_found_set_excludes_records_added_after_it(
    api: TestClient, enrollments: Any, reader: Any, settings: Settings
) -> None:
    first = api.get(URL, params={"pagesize": 2, "netid": "f003abc"}, headers=reader)
    key, total = first.headers["x-request-id"], int(first.headers["x-total-count"])
    section = next(e for e in enrollments if e["netid"] == "f003abc")
    new_row = {**section, "id": section["id"].replace("-student", "-ta"), "role": "ta"}
    new_row.pop("pk", None)

    execute(settings, insert(Enrollment), [new_row])
    seen: list[str] = []
    for page in range(1, total // 2 + 2):
        response = api.get(
            URL, params={"continuation_key": key, "page": page, "pagesize": 2}, headers=reader
        )
        assert response.headers["x-total-count"] == str(total)
        seen += [r["id"] for r in response.json()]
    assert new_row["id"] not in seen and len(seen) == total
    assert new_row["id"] in ids(get_all(api, reader, netid="f003abc"))


def test_continuation_key_belongs_to_its_sub_and_resists_tampering(
    api: TestClient, enrollments: Any, reader: Any, private: Any
) -> None:
    key = api.get(URL, headers=reader).headers["x-request-id"]
    assert api.get(URL, params={"continuation_key": key}, headers=private).status_code == 400
    tampered = key[:-4] + ("AA" if key[-4:-2] != "AA" else "BB") + key[-2:]
    assert api.get(URL, params={"continuation_key": tampered}, headers=reader).status_code == 400
    assert api.get(URL, params={"continuation_key": key}, headers=reader).status_code == 200


def test_found_set_belongs_to_the_scopes_that_counted_it(
    api: TestClient, enrollments: Any, accounts: Accounts
) -> None:
    """A found set's size was counted with its maker's view: a narrower token of the same account
    (or the same token after a scope was removed) would learn from it how many rows it may not
    see. So it gets the found set's 400, and a token with the same scopes pages it."""
    key = accounts.key("two-faces", [ENROLLMENTS_READ, PEOPLE_PRIVATE])
    wide = api.post("/api/jwt", headers={"Authorization": key}).json()["jwt"]
    narrow = api.post(
        "/api/jwt", params={"scope": ENROLLMENTS_READ}, headers={"Authorization": key}
    ).json()["jwt"]
    wide_again = api.post("/api/jwt", headers={"Authorization": key}).json()["jwt"]
    first = api.get(URL, params={"pagesize": 1000}, headers={"Authorization": f"Bearer {wide}"})
    assert "f00conf" in {r["netid"] for r in first.json()}
    found_set = {"continuation_key": first.headers["x-request-id"]}
    again = api.get(URL, params=found_set, headers={"Authorization": f"Bearer {narrow}"})
    assert again.status_code == 400, again.text
    assert again.json()["errors"] == [
        "continuation_key: unknown, expired or not yours; start a new query without it"
    ]
    assert "f00conf" not in again.text and "x-total-count" not in again.headers
    same = api.get(URL, params=found_set, headers={"Authorization": f"Bearer {wide_again}"})
    assert same.status_code == 200
    assert same.json() == first.json()


def test_page_past_the_end_is_empty(api: TestClient, enrollments: Any, reader: Any) -> None:
    response = api.get(URL, params={"page": 500, "pagesize": 10}, headers=reader)
    assert response.status_code == 200
    assert response.json() == []
    assert _next(response) is None
    assert parse_qs(urlsplit(response.headers["link"].split(";")[0][1:-1]).query)["page"] == ["1"]


def test_links_stay_ascii_whatever_the_path(
    api: TestClient, enrollments: Any, accounts: Accounts
) -> None:
    # A route with a path segment (a student's petitions) echoes its path in Link headers.
    headers = accounts.headers(["api:academic:petitions:read"], sub="petition-reader")
    for netid in ("\u0100", "a\x1fb", "f001nkx"):
        response = api.get(f"/api/students/{quote(netid)}/petitions", headers=headers)
        assert response.status_code == 200
        assert response.headers["link"].isascii()
        assert "\x1f" not in response.headers["link"]


def test_a_trailing_slash_is_404_never_a_redirect(
    api: TestClient, enrollments: Any, reader: Any
) -> None:
    """A redirect would be built from the request's own scheme: behind a TLS proxy, plain http."""
    for path in (URL + "/", "/api/academic/petitions/", "/api/petition_types/"):
        r = api.get(path, headers=reader, follow_redirects=False)
        assert r.status_code == 404, (path, r.status_code)
        assert "location" not in r.headers
        assert r.headers["content-type"] == "application/problem+json"
