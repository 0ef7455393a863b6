"""PATCH /api/academic/enrollments/{id}: status codes, their order, the task, idempotency."""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from registrar.auth.scopes import ENROLLMENTS_WRITE as WRITE
from registrar.auth.scopes import PEOPLE_PRIVATE as PRIVATE
from registrar.core.settings import Settings
from tests.support.accounts import Accounts
from tests.support.seeding import audit_count, enrollment_columns, seed_enrollments
from tests.support.tasks import patch_body as body
from tests.support.tasks import wait_task

URL = "/api/academic/enrollments/"
GOOD = body("2020-03-05T17:53:46Z", None)


@pytest.fixture(scope="module")
def ids(api: TestClient, settings: Settings) -> list[str]:
    return seed_enrollments(settings, 80)


@pytest.fixture(scope="module")
def hidden_id(api: TestClient, settings: Settings) -> str:
    return seed_enrollments(settings, 1, confidential=True)[0]


@pytest.fixture(scope="module")
def writer(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([WRITE], sub="svc-writer")


def patch(
    api: TestClient,
    eid: str,
    headers: dict[str, str],
    content: Any = None,
    content_type: str | None = "application/json",
    **kw: Any,
) -> Any:
    h = dict(headers)
    if content_type is not None:
        h["Content-Type"] = content_type
    if content is not None and not isinstance(content, bytes | str):
        content = orjson.dumps(content)
    return api.patch(URL + eid, headers=h, content=content, **kw)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    return dict(problem)


# --- status codes and their order: 401, 403, 404, 415, 400 ------------------------------------


def test_401_without_or_with_bad_token(api: TestClient, ids: list[str]) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        r = patch(api, "missing", headers, b"not json", content_type="text/plain")
        assert_problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_403_beats_404_415_400(api: TestClient, accounts: Accounts, ids: list[str]) -> None:
    reader = accounts.headers(["api:academic:enrollments:read"], sub="svc-reader")
    r = patch(api, "missing", reader, b"{", content_type="text/plain")
    assert WRITE in " ".join(assert_problem(r, 403)["errors"])
    assert_problem(patch(api, ids[0], reader, GOOD), 403)


def test_404_beats_415_400(api: TestClient, writer: dict[str, str]) -> None:
    assert_problem(patch(api, "no-such-enrollment", writer, b"{", content_type="text/plain"), 404)
    assert_problem(patch(api, "no-such-enrollment", writer, GOOD), 404)


@pytest.mark.parametrize("odd", ["a%00b", "a%0Ab", "x" * 300])
def test_an_id_no_enrollment_can_have_is_404(
    api: TestClient, writer: dict[str, str], odd: str
) -> None:
    """The same id check as GET by id, before the id reaches the database (PostgreSQL refuses a
    NUL in text: that was a 500)."""
    r = patch(api, odd, writer, GOOD)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert api.get(f"/api/academic/enrollments/{odd}", headers=writer).status_code in (403, 404)


def test_415_beats_400(api: TestClient, writer: dict[str, str], ids: list[str]) -> None:
    assert_problem(patch(api, ids[0], writer, b"{", content_type="text/plain"), 415)
    assert_problem(patch(api, ids[0], writer, GOOD, content_type=None), 415)
    assert_problem(patch(api, ids[0], writer, GOOD, content_type="application/xml"), 415)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "JSON"),
        (b"{", "JSON"),
        (b"[]", "object"),
        (b'"x"', "object"),
        (b"null", "object"),
        ({}, "Missing attribute: course_assessment"),
        ({"course_assessment": None}, "course_assessment must be an object"),
        (
            {"course_assessment": {"submit_date": None}},
            "Missing attribute: course_assessment.opt_out_date",
        ),
        ({"course_assessment": {"submit_date": None, "opt_out_date": None, "x": 1}}, "Unknown"),
        ({**body(), "final_grade": "A"}, "Unknown attribute: final_grade"),
        (body("2020-03-05T17:53:46Z", "2020-03-06T17:53:46Z"), "both submit_date and opt_out_date"),
        (body("2020-03-05"), "submit_date must be"),
        (body("2020-03-05T17:53:46+05:00"), "submit_date must be"),
        (body("2020-03-05T17:53:46"), "submit_date must be"),
        (body("2020-13-45T17:53:46Z"), "not a valid date-time"),
        (body(None, "yesterday"), "opt_out_date must be"),
        ({"course_assessment": {"submit_date": 20200305, "opt_out_date": None}}, "submit_date"),
        (b'{"course_assessment": {"submit_date": NaN, "opt_out_date": null}}', "JSON"),
        (
            b'{"course_assessment": {"submit_date": 1' + b"0" * 5000 + b', "opt_out_date": null}}',
            "JSON",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        (b'{"course_assessment": "\xff\xfe"}', "JSON"),
        ('{"course_assessment": {"submit_date": "2020-03-05T17:53:46Z"}}'.encode("utf-16"), "JSON"),
    ],
)
def test_400_for_every_invalid_payload(
    api: TestClient, writer: dict[str, str], ids: list[str], content: Any, needle: str
) -> None:
    problem = assert_problem(patch(api, ids[1], writer, content), 400)
    assert problem["errors"], problem
    assert needle in " ".join(problem["errors"]), problem


def test_400_lists_every_problem(api: TestClient, writer: dict[str, str], ids: list[str]) -> None:
    bad = {"course_assessment": {"submit_date": "x", "opt_out_date": "y", "z": 1}, "w": 2}
    errors = assert_problem(patch(api, ids[1], writer, bad), 400)["errors"]
    assert len(errors) == 5, errors


def test_413_for_a_huge_body(api: TestClient, writer: dict[str, str], ids: list[str]) -> None:
    assert_problem(patch(api, ids[1], writer, b" " * (2 * 1024 * 1024)), 413)


# --- the accepted path ------------------------------------------------------------------------


def test_202_then_task_completes(
    api: TestClient, settings: Settings, writer: dict[str, str], ids: list[str]
) -> None:
    eid = ids[2]
    r = patch(api, eid, writer, GOOD)
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "accepted"}
    location = r.headers["location"]
    assert location.startswith("/api/tasks/") and len(location.rsplit("/", 1)[1]) == 24
    assert int(r.headers["retry-after"]) >= 1
    task = wait_task(api, location, writer)
    assert task["status"] == "complete", task
    assert task["message"] == "Enrollment updated successfully."
    assert task["path"] == f"http://testserver/api/academic/enrollments/{eid}"
    assert set(task) == {
        "id",
        "resource",
        "action",
        "resource_id",
        "payload",
        "requester",
        "status",
        "request_date",
        "completed_date",
        "path",
        "worker_data",
        "message",
    }
    assert task["resource"] == "academic.enrollments" and task["action"] == "PATCH"
    assert task["resource_id"] == eid
    assert task["payload"] == GOOD
    assert task["requester"]["sub"] == "svc-writer"
    # Spec section 1: exp and iat as decimal strings, request_date to the second, completed_date
    # always with six fractional digits.
    requester = task["requester"]
    assert re.fullmatch(r"[0-9]{10}", requester["exp"]) and re.fullmatch(
        r"[0-9]{10}", requester["iat"]
    )
    assert int(requester["exp"]) > int(requester["iat"])
    assert set(requester) == {"sub", "name", "email", "scope", "exp", "iat"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", task["request_date"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", task["completed_date"])
    assert task["worker_data"]["attempts"] == 1
    submit, opt_out = enrollment_columns(settings, eid)
    assert submit == dt.datetime(2020, 3, 5, 17, 53, 46, tzinfo=dt.UTC) and opt_out is None
    assert audit_count(settings, task_ids=[task["id"]]) == 1


def test_json_variants_are_accepted(
    api: TestClient, writer: dict[str, str], ids: list[str]
) -> None:
    for ctype in ("application/json; charset=utf-8", "application/merge-patch+json"):
        r = patch(
            api, ids[3], writer, body(None, "2021-01-01T00:00:00.5+00:00"), content_type=ctype
        )
        assert r.status_code == 202, r.text
        task = wait_task(api, r.headers["location"], writer)
        assert task["status"] == "complete"
        # Fractional seconds are truncated (spec section 2), the same in the task's payload,
        # in storage and in reads.
        assert task["payload"] == body(None, "2021-01-01T00:00:00Z")


def test_both_null_clears(
    api: TestClient, settings: Settings, writer: dict[str, str], ids: list[str]
) -> None:
    eid = ids[4]
    r = patch(api, eid, writer, body(None, "2020-04-01T12:00:00Z"))
    assert wait_task(api, r.headers["location"], writer)["status"] == "complete"
    assert enrollment_columns(settings, eid)[1] is not None
    r = patch(api, eid, writer, body())
    assert wait_task(api, r.headers["location"], writer)["status"] == "complete"
    assert enrollment_columns(settings, eid) == (None, None)


def test_task_is_visible_only_to_its_sub(
    api: TestClient, accounts: Accounts, writer: dict[str, str], ids: list[str]
) -> None:
    location = patch(api, ids[5], writer, GOOD).headers["location"]
    wait_task(api, location, writer)
    other = accounts.headers(["api:academic:petitions:read"], sub="svc-other")
    assert_problem(api.get(location, headers=other), 404)
    assert_problem(api.get(location), 401)
    assert_problem(api.get("/api/tasks/000000000000000000000000", headers=writer), 404)
    assert_problem(api.get("/api/tasks/not-an-id", headers=writer), 404)


def test_ferpa_hidden_enrollment_is_404_without_private_scope(
    api: TestClient, accounts: Accounts, writer: dict[str, str], hidden_id: str
) -> None:
    assert_problem(patch(api, hidden_id, writer, GOOD), 404)
    private = accounts.headers([WRITE, PRIVATE], sub="svc-private-writer")
    r = patch(api, hidden_id, private, GOOD)
    assert r.status_code == 202, r.text
    assert wait_task(api, r.headers["location"], private)["status"] == "complete"


# --- idempotency ----------------------------------------------------------------------------


def test_idempotency_key_replays_and_rejects_another_body(
    api: TestClient,
    accounts: Accounts,
    settings: Settings,
    writer: dict[str, str],
    ids: list[str],
) -> None:
    eid = ids[6]
    keyed = {**writer, "Idempotency-Key": "k-6"}
    first = patch(api, eid, keyed, GOOD)
    assert first.status_code == 202
    # Same body (other spacing and key order): the same answer, no second task.
    again = patch(
        api,
        eid,
        keyed,
        b'{ "course_assessment": {"opt_out_date": null, "submit_date": "2020-03-05T17:53:46Z"} }',
    )
    assert again.status_code == 202 and again.headers["location"] == first.headers["location"]
    assert_problem(patch(api, eid, keyed, body()), 422)
    # Another sub may use the same key for its own request.
    other = {**accounts.headers([WRITE], sub="svc-writer-2"), "Idempotency-Key": "k-6"}
    third = patch(api, eid, other, GOOD)
    assert third.status_code == 202 and third.headers["location"] != first.headers["location"]
    wait_task(api, first.headers["location"], writer)
    wait_task(api, third.headers["location"], other)
    assert audit_count(settings, enrollment_id=eid) == 2
    assert_problem(patch(api, eid, {**writer, "Idempotency-Key": "x" * 300}, GOOD), 400)


def test_concurrent_same_key_queues_once(
    api: TestClient, settings: Settings, writer: dict[str, str], ids: list[str]
) -> None:
    eid = ids[7]
    keyed = {**writer, "Idempotency-Key": "race-7"}
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _i: patch(api, eid, keyed, GOOD), range(8)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.headers["location"] for r in responses}) == 1
    wait_task(api, responses[0].headers["location"], writer)
    assert audit_count(settings, enrollment_id=eid) == 1


# --- load ------------------------------------------------------------------------------------


def test_50_concurrent_patches_all_land(
    api: TestClient, settings: Settings, writer: dict[str, str], ids: list[str]
) -> None:
    targets = ids[20:70]
    with ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(
                lambda eid: patch(api, eid, writer, body(None, "2022-02-02T02:02:02Z")), targets
            )
        )
    assert [r.status_code for r in responses] == [202] * 50
    tasks = [wait_task(api, r.headers["location"], writer) for r in responses]
    assert [t["status"] for t in tasks] == ["complete"] * 50
    assert audit_count(settings, task_ids=[t["id"] for t in tasks]) == 50
    for eid in targets[:5] + targets[-5:]:
        assert enrollment_columns(settings, eid)[1] == dt.datetime(
            2022, 2, 2, 2, 2, 2, tzinfo=dt.UTC
        )
