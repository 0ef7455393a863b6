"""The client's reads against a live `registrar serve`: records, filters, paging, errors.

Every test runs with the sync and the async client (the `flavor` fixture).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from registrar_client import (
    BadRequest,
    Enrollment,
    Forbidden,
    NotFound,
    Page,
    RegistrarError,
    RegistrarWarning,
    Unauthorized,
)

from tests.support.client import (
    CONFIDENTIAL,
    READ,
    LiveServer,
    RequestLog,
    close,
    collect,
    enrollment,
    make_client,
    resolve,
)

AAAS_202001 = "AAAS.010.01-202001-U-10002"


@pytest.fixture
async def client(flavor: str, live: LiveServer, all_key: str) -> AsyncIterator[Any]:
    c = make_client(flavor, live.base_url, all_key)
    yield c
    await close(c)


@pytest.fixture
async def reader(flavor: str, live: LiveServer, reader_key: str) -> AsyncIterator[Any]:
    c = make_client(flavor, live.base_url, reader_key)
    yield c
    await close(c)


async def test_get_by_id_gives_every_key_as_attributes(client: Any) -> None:
    eid = f"{AAAS_202001}-f001stu-student"
    record = await resolve(client.enrollments.get(eid))
    assert isinstance(record, Enrollment)
    expected = enrollment("AAAS.010.01", "202001", "f001stu", "student")
    assert record.id == eid
    assert record.netid == "f001stu"
    assert record.section.id == AAAS_202001
    assert record.section.lms_section_id == "AAAS.010.01-WI20"
    assert record.term.sis_term_code == "202001"
    assert record.term.lms_term_id == "WI20"
    assert record.is_active is False
    assert record.final_grade == "A"
    assert record.credit_hours_earned == 1
    assert record.course_assessment is None or "submit_date" in record.course_assessment
    # The raw JSON is the server's, whole: the extract's keys (less `confidential`) and the
    # cache_date the load set.
    assert set(record.raw) == (set(expected) - {"confidential"}) | {"cache_date"}
    assert record["section"]["id"] == record.section.id
    assert dict(record)["term"] == record.term


async def test_sensitive_keys_absent_without_the_scope(reader: Any) -> None:
    record = await resolve(reader.enrollments.get(f"{AAAS_202001}-f001stu-student"))
    assert "final_grade" not in record
    assert record.get("final_grade") is None
    with pytest.raises(AttributeError, match="final_grade"):
        _ = record.final_grade
    with pytest.raises(KeyError):
        _ = record["course_assessment"]
    assert record.section.id == AAAS_202001


async def test_confidential_people_exist_only_with_the_private_scope(
    client: Any, reader: Any
) -> None:
    hidden = f"{AAAS_202001}-{CONFIDENTIAL}-student"
    assert (await resolve(client.enrollments.get(hidden))).netid == CONFIDENTIAL
    with pytest.raises(NotFound) as caught:
        await resolve(reader.enrollments.get(hidden))
    assert caught.value.status == 404
    assert caught.value.detail == "No enrollment with that id."
    everyone = await collect(client.enrollments.list(netid=CONFIDENTIAL))
    assert len(everyone) == 4
    assert await collect(reader.enrollments.list(netid=CONFIDENTIAL)) == []


async def test_list_follows_link_to_the_end_with_the_given_pagesize(
    flavor: str, live: LiveServer, all_key: str
) -> None:
    log = RequestLog()
    c = make_client(flavor, live.base_url, all_key, log=log)
    try:
        paginator = c.enrollments.list(section__id="COSC.*", pagesize=5)
        records = await collect(paginator)
    finally:
        await close(c)
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) == 28  # 4 terms x (1 instructor + 6 students)
    assert all(i.startswith("COSC.001.02-") for i in ids)
    assert paginator.total == 28
    assert paginator.continuation_key
    pages = [u for u in log.urls if u.path == "/api/academic/enrollments"]
    assert len(pages) == 6  # 5+5+5+5+5+3, and no request past the last page
    assert pages[0].params.get("section.id") == "COSC.*"
    assert pages[0].params.get("pagesize") == "5"
    for url in pages[1:]:
        # Later pages are the server's own Link URLs: the found set, a keyset cursor.
        assert url.params.get("continuation_key") == paginator.continuation_key
        assert url.params.get("pagesize") == "5"
        assert "cursor" in url.params
        assert "section.id" not in url.params


async def test_pages_walk_page_by_page(client: Any) -> None:
    paginator = client.enrollments.list({"section.id": "MATH.*"}, pagesize=10)
    pages = await collect(paginator.pages())
    assert [len(p) for p in pages] == [10, 10, 8]
    assert all(isinstance(p, Page) for p in pages)
    assert pages[0].total == 28
    assert pages[0].next_url is not None
    assert pages[-1].next_url is None
    assert isinstance(pages[0][0], Enrollment)


def _term(e: Any) -> str:
    return str(e.term.sis_term_code)


FILTERS: list[tuple[str, tuple[Any, ...], dict[str, Any], Callable[[Any], bool]]] = [
    ("less than", (), {"term__sis_term_code": "<202001"}, lambda e: _term(e) < "202001"),
    (
        "mapping, at least",
        ({"term.sis_term_code": ">=202001"},),
        {},
        lambda e: _term(e) >= "202001",
    ),
    ("not equal", (), {"term__sis_term_code": "!201809"}, lambda e: _term(e) != "201809"),
    ("wildcard", (), {"section__id": "AAAS.*"}, lambda e: e.section.id.startswith("AAAS.")),
    (
        "any of (a list)",
        (),
        {"netid": ["f000stu", "f001stu"]},
        lambda e: e.netid in ("f000stu", "f001stu"),
    ),
    ("boolean", (), {"is_active": True}, lambda e: e.is_active is True),
    ("null", (), {"final_grade": None}, lambda e: e.final_grade is None),
    (
        "a range: the same name twice, as pairs",
        ([("term.sis_term_code", ">201809"), ("term.sis_term_code", "<202003")],),
        {},
        lambda e: "201809" < _term(e) < "202003",
    ),
    (
        "mapping and keywords together",
        ({"role": "student"},),
        {"netid": "f002stu", "term__sis_term_code": ">201901"},
        lambda e: e.role == "student" and e.netid == "f002stu" and _term(e) > "201901",
    ),
]


@pytest.mark.parametrize(
    ("args", "kwargs", "keep"), [f[1:] for f in FILTERS], ids=[f[0] for f in FILTERS]
)
async def test_filters_and_operators_match_what_they_say(
    client: Any, args: tuple[Any, ...], kwargs: dict[str, Any], keep: Callable[[Any], bool]
) -> None:
    everything = await collect(client.enrollments.list(pagesize=1000))
    expected = sorted(e.id for e in everything if keep(e))
    assert expected, "the case must select something"
    assert len(expected) < len(everything), "the case must leave something out"
    got = await collect(client.enrollments.list(*args, pagesize=50, **kwargs))
    assert sorted(e.id for e in got) == expected


async def test_a_filter_the_server_ignores_is_a_warning(reader: Any) -> None:
    everything = await collect(reader.enrollments.list(pagesize=1000))
    paginator = reader.enrollments.list(final_grade="A", pagesize=1000)
    with pytest.warns(RegistrarWarning, match="final_grade"):
        got = await collect(paginator)
    assert paginator.ignored_parameters == ["final_grade"]
    assert len(got) == len(everything)  # unfiltered: the scope hides final_grade


async def test_no_warning_when_every_filter_applies(client: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await collect(client.enrollments.list(final_grade="A"))


async def test_paging_sees_each_record_once_while_loads_change_the_data(
    client: Any, live: LiveServer
) -> None:
    """The found set is fixed by the first page: enrollments loaded (and rows updated) while
    the client walks the Link chain are neither seen nor make it skip or repeat a record."""
    subject = "HIST.001.01"
    tag = "a" if "Async" in type(client).__name__ else "s"
    base = [enrollment("AAAS.010.01", "202003", f"h{tag}{i:03d}", "student") for i in range(23)]
    for record in base:  # their own section, so other tests' counts do not move
        record["section"]["id"] = record["section"]["id"].replace("AAAS.010.01", subject + tag)
        record["id"] = f"{record['section']['id']}-{record['netid']}-student"
    live.load(base)
    paginator = client.enrollments.list(section__id=f"{subject}{tag}-*", pagesize=4)
    first = [await _next(paginator) for _ in range(4)]
    # Between pages: new enrollments that match the filter, and changes to matching ones.
    more = [dict(r, netid=f"n{tag}{i:03d}") for i, r in enumerate(base[:6])]
    for r in more:
        r["id"] = f"{r['section']['id']}-{r['netid']}-student"
    changed = [dict(r, final_grade="B") for r in base[10:15]]
    live.load(more + changed)
    rest = await collect(paginator)
    ids = [r.id for r in first + rest]
    assert len(ids) == len(set(ids)), "a record was seen twice"
    assert sorted(ids) == sorted(r["id"] for r in base)
    assert paginator.total == len(base)
    # A new walk sees the new records (and the changes).
    fresh = await collect(client.enrollments.list(section__id=f"{subject}{tag}-*"))
    assert len(fresh) == len(base) + len(more)
    assert {r.id: r.final_grade for r in fresh}[base[12]["id"]] == "B"


async def _next(paginator: Any) -> Any:
    if hasattr(paginator, "__anext__"):
        return await paginator.__anext__()
    return next(paginator)


async def test_errors_carry_the_problem(flavor: str, live: LiveServer, reader_key: str) -> None:
    c = make_client(flavor, live.base_url, reader_key)
    try:
        with pytest.raises(BadRequest) as bad:
            await collect(c.enrollments.list(is_active="yes"))
        assert bad.value.status == 400
        assert bad.value.title == "Bad Request"
        assert bad.value.errors and "is_active" in bad.value.errors[0]
        assert bad.value.type and bad.value.type.endswith("invalid-request")
        assert bad.value.problem["status"] == 400

        with pytest.raises(BadRequest) as big:
            await collect(c.enrollments.list(pagesize=5000))
        assert "pagesize" in big.value.errors[0]

        with pytest.raises(Forbidden) as forbidden:
            await resolve(
                c.enrollments.set_course_assessment(
                    f"{AAAS_202001}-f001stu-student", submit_date=None
                )
            )
        assert forbidden.value.status == 403
        assert forbidden.value.errors == ["missing scope: api:academic:enrollments:write"]

        with pytest.raises(NotFound):
            await resolve(c.enrollments.get("AAAS.010.01-202001-U-10002-nobody-student"))
        with pytest.raises(NotFound):
            await resolve(c.tasks.get("0123456789abcdef01234567"))
        with pytest.raises(NotFound):
            await resolve(c.petitions.get("0123456789abcdef01234567"))
    finally:
        await close(c)


async def test_unknown_key_is_unauthorized(flavor: str, live: LiveServer) -> None:
    c = make_client(flavor, live.base_url, "rk_not-a-key")
    try:
        with pytest.raises(Unauthorized) as caught:
            await resolve(c.enrollments.get(f"{AAAS_202001}-f001stu-student"))
    finally:
        await close(c)
    assert caught.value.status == 401
    assert "bearer" in caught.value.headers.get("www-authenticate", "").lower()
    assert isinstance(caught.value, RegistrarError)


async def test_a_scope_the_account_lacks_is_forbidden(flavor: str, live: LiveServer) -> None:
    key = live.key("client-enrollments-only", (READ,))
    c = make_client(flavor, live.base_url, key)
    try:
        with pytest.raises(Forbidden) as caught:
            await collect(c.petitions.list())
        assert caught.value.errors == ["missing scope: api:academic:petitions:read"]
        with pytest.raises(Forbidden):
            await collect(c.students.petitions("f001stu"))
    finally:
        await close(c)


async def test_unknown_student_has_no_petitions(client: Any) -> None:
    assert await collect(client.students.petitions("nobody")) == []


async def test_request_reaches_any_other_endpoint_with_the_token(client: Any) -> None:
    """The escape hatch: `/api/petition_types` (no method of its own) with the token, the
    retry policy and the errors of every call."""
    response = await resolve(client.request("GET", "/api/petition_types/Q41"))
    assert response.status_code == 200
    assert response.json()["id"] == "Q41"
    listed = await resolve(client.request("GET", "/api/petition_types", params={"pagesize": 5}))
    assert len(listed.json()) == 5
    with pytest.raises(NotFound):
        await resolve(client.request("GET", "/api/academic/enrollments/nobody-here"))
