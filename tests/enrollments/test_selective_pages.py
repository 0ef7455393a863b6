"""Selective pages (issue 9 item 9): `?netid=`, `?section.id=` (an equality on an indexed key) make
their found set in one statement, and on SQLite remember it until the next commit. Over HTTP, on
both databases: the same rows, totals, links, FERPA hiding and sensitive fields as any page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from registrar.core.settings import Settings
from registrar.enrollments.models import Enrollment
from registrar.people.models import Person
from tests.support.databases import execute

URL = "/api/academic/enrollments"
SENSITIVE_KEYS = {"final_grade", "credit_hours_earned", "course_assessment"}
HIDDEN = "f00conf"  # the seed's confidential person: a member of every section


def _next(response: Any) -> str | None:
    found = re.search(r'<([^>]+)>;\s*rel="next"', response.headers["link"])
    return found.group(1) if found else None


def walk(api: TestClient, headers: dict[str, str], **params: Any) -> tuple[int, list[str]]:
    """X-Total-Count of the first page, and every id met following Link: rel="next"."""
    response = api.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    total = int(response.headers["x-total-count"])
    seen = [r["id"] for r in response.json()]
    while (link := _next(response)) is not None:
        parts = urlsplit(link)
        response = api.get(f"{parts.path}?{parts.query}", headers=headers)
        assert response.status_code == 200
        assert int(response.headers["x-total-count"]) == total
        seen += [r["id"] for r in response.json()]
    return total, seen


def expected(enrollments: list[dict[str, Any]], *, private: bool, **match: str) -> list[str]:
    return [
        e["id"]
        for e in enrollments
        if all(e[k] == v for k, v in match.items()) and (private or e["netid"] != HIDDEN)
    ]


@pytest.mark.parametrize("pagesize", [1, 2, 100])
@pytest.mark.parametrize(
    ("param", "column", "value"),
    [
        ("netid", "netid", "f001nkx"),
        ("section.id", "section_id", "AAAS.010.01-202001-U-10191"),
        ("section.id", "section_id", "MATH.010.01-202003-U-10196"),
    ],
)
def test_selective_pages_total_and_walk_the_callers_view_once(
    api: TestClient,
    enrollments: Any,
    reader: Any,
    private: Any,
    param: str,
    column: str,
    value: str,
    pagesize: int,
) -> None:
    for headers, sees_private in ((reader, False), (private, True)):
        want = expected(enrollments, private=sees_private, **{column: value})
        assert want, "the seed has rows for this filter"
        total, seen = walk(api, headers, **{param: value, "pagesize": pagesize})
        assert total == len(want)
        assert len(seen) == len(set(seen)) and set(seen) == set(want)


def test_a_confidential_persons_page_is_an_unknown_ones(
    api: TestClient, enrollments: Any, reader: Any, private: Any
) -> None:
    hidden = api.get(URL, params={"netid": HIDDEN}, headers=reader)
    unknown = api.get(URL, params={"netid": "f999zzz"}, headers=reader)
    for response in (hidden, unknown):
        assert response.status_code == 200
        assert response.json() == []
        assert response.headers["x-total-count"] == "0"
        assert _next(response) is None
    shown = api.get(URL, params={"netid": HIDDEN}, headers=private)
    assert int(shown.headers["x-total-count"]) == len(shown.json()) == 9
    assert {r["netid"] for r in shown.json()} == {HIDDEN}


def test_page_numbers_and_a_page_past_the_end(
    api: TestClient, enrollments: Any, reader: Any
) -> None:
    want = expected(enrollments, private=False, netid="f001nkx")
    page2 = api.get(URL, params={"netid": "f001nkx", "pagesize": 4, "page": 2}, headers=reader)
    assert page2.headers["x-total-count"] == str(len(want))
    whole = api.get(URL, params={"netid": "f001nkx"}, headers=reader).json()
    assert [r["id"] for r in page2.json()] == [r["id"] for r in whole[4:8]]
    past = api.get(URL, params={"netid": "f001nkx", "pagesize": 4, "page": 9}, headers=reader)
    assert past.status_code == 200 and past.json() == []
    assert past.headers["x-total-count"] == str(len(want))


def test_a_selective_filter_with_others_counts_the_same_way(
    api: TestClient, enrollments: Any, reader: Any, private: Any
) -> None:
    section = "COSC.010.01-201909-U-10189"
    for headers, sees_private in ((reader, False), (private, True)):
        want = expected(enrollments, private=sees_private, section_id=section, role="student")
        total, seen = walk(api, headers, **{"section.id": section, "role": "student"})
        assert total == len(want) and set(seen) == set(want)
    # A list of netids is selective too; a wildcard is not (both answer the same either way).
    total, seen = walk(api, reader, netid=f"f001nkx,{HIDDEN}", pagesize=5)
    assert total == len(seen) == 9 and HIDDEN not in {i.split("-")[-2] for i in seen}


def test_sensitive_keys_only_with_the_scope(
    api: TestClient, enrollments: Any, reader: Any, sensitive: Any
) -> None:
    plain = api.get(URL, params={"netid": "f001nkx"}, headers=reader).json()
    full = api.get(URL, params={"netid": "f001nkx"}, headers=sensitive).json()
    assert plain and all(not SENSITIVE_KEYS & set(r) for r in plain)
    assert full and all(set(r) >= SENSITIVE_KEYS for r in full)
    assert {r["final_grade"] for r in full} >= {"A"}


def test_a_selective_page_takes_no_second_count(
    api: TestClient, enrollments: Any, reader: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wide filter's found set counts its hidden rows on a second connection; a selective one
    counts in its page's statement and never goes that way."""
    from registrar.paging import pages

    def refuse(*_: Any) -> Any:
        raise AssertionError("a selective page took the wide path's second count")

    monkeypatch.setattr(pages, "_count_hidden", refuse)
    monkeypatch.setattr(pages, "_read_new_page", refuse)
    response = api.get(URL, params={"section.id": "AAAS.010.01-202003-U-10194"}, headers=reader)
    assert response.status_code == 200
    assert response.headers["x-total-count"] == "3"


def test_a_commit_is_seen_by_the_next_identical_request(
    api: TestClient, enrollments: Any, reader: Any, settings: Settings
) -> None:
    """On SQLite the page is remembered until the next commit: a new enrollment, and a person made
    confidential, show in the very next request for the same page (both databases alike)."""
    params = {"netid": "f003abc"}
    first = api.get(URL, params=params, headers=reader)
    again = api.get(URL, params=params, headers=reader)
    assert again.json() == first.json()
    total = int(first.headers["x-total-count"])

    row = next(e for e in enrollments if e["netid"] == "f003abc")
    added = {**row, "id": row["id"].replace("-student", "-ta"), "role": "ta"}
    added.pop("pk", None)
    execute(settings, insert(Enrollment), [added])
    grown = api.get(URL, params=params, headers=reader)
    assert int(grown.headers["x-total-count"]) == total + 1
    assert added["id"] in {r["id"] for r in grown.json()}

    execute(settings, update(Person).where(Person.netid == "f003abc").values(confidential=True))
    try:
        gone = api.get(URL, params=params, headers=reader)
        assert gone.json() == [] and gone.headers["x-total-count"] == "0"
    finally:
        execute(
            settings, update(Person).where(Person.netid == "f003abc").values(confidential=False)
        )
        execute(settings, Enrollment.__table__.delete().where(Enrollment.id == added["id"]))
