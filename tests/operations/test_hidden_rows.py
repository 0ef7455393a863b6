"""Issue 9 item 2, attacked from outside: a plain read token walks the collections and must learn
nothing about the rows FERPA hides from it.

Two databases hold the same visible enrollments and petitions; in one, a confidential person's
rows sit before, between and after them (the newest row of each table is hidden too), in the
other there are none. A token without `urn:dartmouth:people:private` walks both the ways a client
can: the `Link: rel="next"` chain at pagesize=1, `?page=N`, `continuation_key` with `page`, with
and without filters. Every answer must be the same in both: status, body, every header. The keys
and cursors are sealed with a fresh nonce each time, so they are compared by what they can reveal:
their length (a cursor that was the row key, or a key holding counts, differed).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, insert, select

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ, PETITIONS_READ
from registrar.core.settings import Settings
from registrar.enrollments.models import Enrollment, Section, Term
from registrar.people.models import Person
from registrar.petitions.models import Petition
from tests.support.accounts import Accounts
from tests.support.databases import make_settings, new_database_url, read, write

LOADED_AT = dt.datetime(2024, 11, 20, 20, 54, 27, tzinfo=dt.UTC)
VISIBLE = ["f01vis", "f02vis", "f03vis"]
HIDDEN = ["f01hid", "f02hid"]
TERM = {"id": "202401-U", "lms_term_id": "WI24", "sis_ptrm_code": "U", "sis_term_code": "202401"}
SECTIONS = [f"{s}.010.01-202401-U-{crn}" for s, crn in (("AAAS", 1), ("COSC", 2), ("MATH", 3))]
# Where the hidden rows go, in insertion (row key) order: before, between and after the visible.
HIDDEN_EVERY = 2


def _enrollment(section: str, netid: str) -> dict[str, Any]:
    return {
        "id": f"{section}-{netid}-student",
        "netid": netid,
        "role": "student",
        "school_id": "UG",
        "section_id": section,
        "term_id": TERM["id"],
        "is_active": True,
        "is_in_session": True,
        "cache_date": LOADED_AT,
    }


def _petition(n: int, netid: str) -> dict[str, Any]:
    return {
        "id": f"{n:024x}",
        "netid": netid,
        "petition_code": "Q14",
        "origin_code": "UREG",
        "school": "UG",
        "decision": None,
        "grade_term": "24W",
        "user_netid": "f006s0b",
        # Dates interleave too: a hidden petition's date falls between its visible neighbours'.
        "effective_date": LOADED_AT + dt.timedelta(days=n),
        "cache_date": LOADED_AT,
        "created_by_task": None,
    }


def _interleave(visible: list[Any], hidden: list[Any], with_hidden: bool) -> list[Any]:
    """`visible` in order; with `with_hidden`, hidden rows first, after every HIDDEN_EVERY
    visible rows, and last."""
    if not with_hidden:
        return list(visible)
    spare = iter(hidden * len(visible) * 2)
    rows = [next(spare)]
    for i, row in enumerate(visible, 1):
        rows.append(row)
        if i % HIDDEN_EVERY == 0:
            rows += [next(spare), next(spare)]
    return [*rows, next(spare)]


def _seed(connection: Connection, with_hidden: bool) -> None:
    connection.execute(
        insert(Person),
        [
            {"netid": n, "confidential": n in HIDDEN, "updated_at": LOADED_AT}
            for n in VISIBLE + HIDDEN + ["f006s0b"]
        ],
    )
    connection.execute(insert(Term), [TERM])
    connection.execute(
        insert(Section), [{"id": s, "lms_section_id": s, "sis_section_id": s} for s in SECTIONS]
    )
    enrollments: list[dict[str, Any]] = []
    for section in SECTIONS:
        visible = [_enrollment(section, n) for n in VISIBLE]
        hidden = [_enrollment(section, n) for n in HIDDEN]
        for row in _interleave(visible, hidden, with_hidden):
            if row not in enrollments:
                enrollments.append(row)
    hidden_enrollments = [e for e in enrollments if e["netid"] in HIDDEN]
    if with_hidden:
        # The newest row of the table is a hidden one: a found set's snapshot includes it.
        enrollments.remove(hidden_enrollments[-1])
        enrollments.append(hidden_enrollments[-1])
    for row in enrollments:  # one at a time: the row keys follow this order on both databases
        connection.execute(insert(Enrollment), [row])
    # Petitions: the visible ones numbered 2, 4, 6...; hidden ones take the odd numbers between.
    visible_petitions = [_petition(2 * i, VISIBLE[i % len(VISIBLE)]) for i in range(1, 8)]
    hidden_petitions = [_petition(2 * i + 1, HIDDEN[i % len(HIDDEN)]) for i in range(0, 9)]
    spare = iter(hidden_petitions)
    rows = _interleave(visible_petitions, hidden_petitions, with_hidden)
    for row in rows:
        if row["netid"] in HIDDEN:
            row = next(spare)
        connection.execute(insert(Petition), [row])


@dataclass
class Twin:
    settings: Settings
    api: TestClient
    reader: dict[str, str]


def _twin(tmp_path_factory: pytest.TempPathFactory, with_hidden: bool) -> Iterator[Twin]:
    url, drop = new_database_url(tmp_path_factory.mktemp("twin"))
    settings = make_settings(url)
    try:
        with TestClient(create_app(settings), base_url="http://testserver") as api:
            write(settings, _seed, with_hidden)
            reader = Accounts(url, api).headers([ENROLLMENTS_READ, PETITIONS_READ], sub="walker")
            yield Twin(settings, api, reader)
    finally:
        drop()


@pytest.fixture(scope="module")
def with_hidden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _twin(tmp_path_factory, True)


@pytest.fixture(scope="module")
def without_hidden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _twin(tmp_path_factory, False)


SEALED = re.compile(r"(continuation_key|cursor)=([^&>]*)")
# Headers that differ between any two answers, hidden rows or not.
PER_ANSWER = {"date", "x-correlation-id"}


def _seen(response: Any) -> tuple[Any, ...]:
    """What an answer shows the client, with each sealed value reduced to its length."""
    headers = []
    for name, value in response.headers.items():
        if name in PER_ANSWER:
            continue
        if name == "x-request-id":
            value = f"<sealed {len(value)}>"
        elif name == "link":
            value = SEALED.sub(lambda m: f"{m.group(1)}=<sealed {len(m.group(2))}>", value)
        headers.append((name, value))
    return response.status_code, response.content, sorted(headers)


def _next(response: Any) -> str | None:
    match = re.search(r'<([^>]+)>;\s*rel="next"', response.headers.get("link", ""))
    if match is None:
        return None
    parts = urlsplit(match.group(1))
    return f"{parts.path}?{parts.query}"


def _walk(twin: Twin, url: str, **params: Any) -> list[tuple[Any, ...]]:
    """Every way of paging `url` at pagesize=1: what each answer shows."""
    seen = []
    first = twin.api.get(url, params={"pagesize": 1, **params}, headers=twin.reader)
    assert first.status_code == 200, first.text
    seen.append(_seen(first))
    total = int(first.headers["x-total-count"])
    response = first
    while (link := _next(response)) is not None:  # the Link chain: cursors
        response = twin.api.get(link, headers=twin.reader)
        seen.append(_seen(response))
    key = first.headers["x-request-id"]
    for page in range(1, total + 3):
        # By offset, without and with the found set's key.
        by_page = twin.api.get(
            url, params={"pagesize": 1, "page": page, **params}, headers=twin.reader
        )
        seen.append(_seen(by_page))
        keyed = {"continuation_key": key, "pagesize": 1, "page": page}
        seen.append(_seen(twin.api.get(url, params=keyed, headers=twin.reader)))
    return seen


WALKS: list[tuple[str, dict[str, str]]] = [
    ("/api/academic/enrollments", {}),
    ("/api/academic/enrollments", {"section.id": SECTIONS[1]}),
    ("/api/academic/enrollments", {"section.id": "COSC.*,MATH.*"}),
    ("/api/academic/enrollments", {"netid": "!f02vis"}),
    ("/api/academic/enrollments", {"netid": HIDDEN[0]}),  # a hidden person: nothing, as unknown
    ("/api/academic/enrollments", {"netid": "f0*"}),
    ("/api/academic/petitions", {}),
    ("/api/academic/petitions", {"effective_date": ">2024-11-25T00:00:00Z"}),
    ("/api/academic/petitions", {"effective_date": "<2024-12-01T00:00:00Z"}),
    ("/api/academic/petitions", {"netid": ",".join(VISIBLE + HIDDEN)}),
    ("/api/students/f01vis/petitions", {}),
    (f"/api/students/{HIDDEN[0]}/petitions", {}),
]


@pytest.mark.parametrize(("url", "params"), WALKS)
def test_a_walk_at_pagesize_1_is_the_same_whether_hidden_rows_exist_or_not(
    with_hidden: Twin, without_hidden: Twin, url: str, params: dict[str, str]
) -> None:
    walked = _walk(with_hidden, url, **params)
    assert walked == _walk(without_hidden, url, **params)
    # The walk did see rows (so the comparison compared something), and the hidden rows exist.
    if HIDDEN[0] not in url and params.get("netid") != HIDDEN[0]:
        assert any(status == 200 and body != b"[]" for status, body, _ in walked)


def test_the_hidden_rows_are_there_to_be_hidden(with_hidden: Twin, without_hidden: Twin) -> None:
    """The walks compare something: one database holds the hidden rows, the other not, and
    the reader sees neither their records nor their count."""

    def rows(connection: Connection) -> tuple[int, int]:
        return (
            int(connection.scalar(select(func.count()).select_from(Enrollment)) or 0),
            int(connection.scalar(select(func.count()).select_from(Petition)) or 0),
        )

    visible = (len(SECTIONS) * len(VISIBLE), 7)
    assert read(without_hidden.settings, rows) == visible
    assert all(a > b for a, b in zip(read(with_hidden.settings, rows), visible, strict=True))
    for url, count in zip(
        ("/api/academic/enrollments", "/api/academic/petitions"), visible, strict=True
    ):
        for twin in (with_hidden, without_hidden):
            response = twin.api.get(url, headers=twin.reader)
            assert response.headers["x-total-count"] == str(count)
            assert not {r["netid"] for r in response.json()} & set(HIDDEN)


def test_cursors_and_keys_have_one_length(with_hidden: Twin) -> None:
    """Every cursor of a walk has the same length, and every key of the same filters too."""
    twin = with_hidden
    response = twin.api.get(
        "/api/academic/enrollments", params={"pagesize": 1}, headers=twin.reader
    )
    cursors, keys = set(), {len(response.headers["x-request-id"])}
    while (link := _next(response)) is not None:
        cursors.add(len(dict(parse_qsl(urlsplit(link).query))["cursor"]))
        response = twin.api.get(link, headers=twin.reader)
        keys.add(len(response.headers["x-request-id"]))
    assert len(cursors) == 1 and len(keys) == 1
