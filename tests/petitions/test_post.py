"""POST /api/academic/petitions over HTTP: status codes, task outcome, validation, redelivery."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select, update

from registrar.auth.scopes import PEOPLE_PRIVATE, PETITIONS_READ, PETITIONS_WRITE
from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.petitions.jobs import create_petition
from registrar.petitions.models import Petition
from registrar.tasks.handlers import ClaimedTask
from registrar.tasks.models import Task
from registrar.tasks.repository import TASKS
from tests.support.accounts import Accounts
from tests.support.databases import execute, read
from tests.support.databases import with_runtime as run_db
from tests.support.seeding import CONFIDENTIAL_PETITIONER as CONFIDENTIAL
from tests.support.seeding import PETITION_KEYS as KEYS
from tests.support.tasks import wait_task

URL = "/api/academic/petitions"
JSON = {"Content-Type": "application/json"}
HEX24 = re.compile(r"[0-9a-f]{24}")


def petition(**changes: Any) -> dict[str, Any]:
    """Seed 003's example payload, with changes (None removes a key)."""
    body: dict[str, Any] = {
        "netid": "f006kdf",
        "petition_code": "Q41",
        "origin_code": "UREG",
        "school": "UG",
        "decision": "IDP 095",
        "grade_term": "24F",
        "user_netid": "f006s0b",
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


@pytest.fixture(scope="module")
def writer(accounts: Accounts, petitions: Any) -> dict[str, str]:
    return accounts.headers([PETITIONS_WRITE, PETITIONS_READ], sub="dplan")


@pytest.fixture(scope="module")
def private_writer(accounts: Accounts, petitions: Any) -> dict[str, str]:
    return accounts.headers([PETITIONS_WRITE, PETITIONS_READ, PEOPLE_PRIVATE], sub="dplan-private")


def post(api: TestClient, headers: dict[str, str], body: Any, **extra: str) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return api.post(URL, content=content, headers={**headers, **JSON, **extra})


def submit(api: TestClient, headers: dict[str, str], fields: Any) -> dict[str, Any]:
    """POST a petition, expect 202, and return the finished task."""
    response = post(api, headers, {"petition": fields})
    assert response.status_code == 202, response.text
    return wait_task(api, response.headers["location"], headers)


def problems(task: dict[str, Any]) -> str:
    assert task["status"] == "error", task
    assert task["path"] == "http://testserver/api/academic/petitions"
    message = task["message"]
    assert isinstance(message, str)
    return message


# --- status codes of the POST itself -------------------------------------------------------------


def test_401_without_or_with_a_bad_token(api: TestClient, petitions: Any) -> None:
    r = api.post(URL, json={"petition": petition()})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["content-type"] == "application/problem+json"
    r = api.post(URL, json={"petition": petition()}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_403_without_the_write_scope(api: TestClient, accounts: Accounts) -> None:
    headers = accounts.headers([PETITIONS_READ], sub="reader-only")
    r = post(api, headers, {"petition": petition()})
    assert r.status_code == 403
    assert r.json()["errors"] == [f"missing scope: {PETITIONS_WRITE}"]
    # 403 comes before 415 and 400: the body is not even looked at.
    r = api.post(URL, content=b"junk", headers={**headers, "Content-Type": "text/plain"})
    assert r.status_code == 403


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_415_unless_json(api: TestClient, writer: dict[str, str], content_type: str | None) -> None:
    headers = dict(writer)
    if content_type:
        headers["Content-Type"] = content_type
    r = api.post(URL, content=orjson.dumps({"petition": petition()}), headers=headers)
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "The payload must be a JSON object."),
        (b"{not json", "Not JSON"),
        (b"[]", "The payload must be a JSON object with a petition attribute."),
        (b'"text"', "The payload must be a JSON object with a petition attribute."),
        (b"{}", "Missing attribute: petition."),
        (b'{"petition": "f006kdf"}', "petition must be a JSON object."),
        (b'{"petition": null}', "petition must be a JSON object."),
        (b'{"petition": {}, "extra": 1}', "Unknown attribute: extra."),
        (b"\xff\xfe", "Not JSON"),
        (b"[" * 5000, "Not JSON"),
    ],
)
def test_400_lists_the_problems(
    api: TestClient, writer: dict[str, str], raw: bytes, expected: str
) -> None:
    r = post(api, writer, raw)
    assert r.status_code == 400, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["status"] == 400
    assert any(expected in e for e in body["errors"]), body


def test_413_for_a_body_over_one_mebibyte(api: TestClient, writer: dict[str, str]) -> None:
    big = {"petition": petition(decision="x" * (1024 * 1024 + 10))}
    r = post(api, writer, big)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"


def test_openapi_documents_the_body_and_errors(api: TestClient) -> None:
    op = api.get("/openapi.json").json()["paths"][URL]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["petition"]
    assert set(schema["properties"]["petition"]["properties"]) == {
        "netid",
        "petition_code",
        "origin_code",
        "school",
        "decision",
        "grade_term",
        "user_netid",
    }
    assert {"202", "400", "401", "403", "413", "415"} <= set(op["responses"])


# --- the task ------------------------------------------------------------------------------------


def test_202_then_complete_and_the_petition_is_readable_at_path(
    api: TestClient, writer: dict[str, str]
) -> None:
    r = post(api, writer, {"petition": petition()})
    assert r.status_code == 202
    assert r.json() == {"status": "accepted"}
    location = r.headers["location"]
    assert re.fullmatch(r"/api/tasks/[0-9a-f]{24}", location)
    task = wait_task(api, location, writer)
    assert task["status"] == "complete", task
    assert task["resource"] == "academic.petitions"
    assert task["action"] == "POST"
    assert task["resource_id"] is None
    assert task["payload"] == petition()
    assert task["message"] == "Petition created successfully."
    match = re.fullmatch(r"http://testserver/api/academic/petitions/([0-9a-f]{24})", task["path"])
    assert match, task["path"]
    got = api.get(task["path"], headers=writer)
    assert got.status_code == 200
    body = got.json()
    assert list(body) == KEYS
    assert body["id"] == match.group(1)
    assert body["netid"] == "f006kdf"
    assert body["petition_code"] == "Q41"
    assert body["petition_name"] == "Degree Requirement Exception"
    assert body["origin_code"] == "UREG"
    assert body["origin_name"] == "UG - Registrar"
    assert body["school"] == "UG"
    assert body["decision"] == "IDP 095"
    assert body["grade_term"] == "24F"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["effective_date"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["cache_date"])


def test_seed_003_sample_normalizes_case(api: TestClient, writer: dict[str, str]) -> None:
    # Seed 003's successful sample: user_netid in capitals, decision "2023-2024", grade 24W.
    fields = petition(
        netid="f006s0b",
        decision="2023-2024",
        grade_term="24w=l",
        user_netid="F006S0B",
        petition_code="q25",
        school="ug",
    )
    task = submit(api, writer, fields)
    assert task["status"] == "complete", task
    assert task["payload"] == fields  # the task keeps what was sent
    body = api.get(task["path"], headers=writer).json()
    assert (body["netid"], body["grade_term"], body["petition_code"], body["school"]) == (
        "f006s0b",
        "24W=L",
        "Q25",
        "UG",
    )
    assert body["petition_name"] == "Reduce Sr Yr Residence Req"


def test_optional_decision_and_user_netid(api: TestClient, writer: dict[str, str]) -> None:
    task = submit(api, writer, petition(decision=None, user_netid=None))
    assert task["status"] == "complete", task
    assert api.get(task["path"], headers=writer).json()["decision"] is None
    fields = petition()
    fields["decision"] = None
    fields["user_netid"] = None
    assert submit(api, writer, fields)["status"] == "complete"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"netid": None}, "Missing attribute: netid."),
        ({"petition_code": None}, "Missing attribute: petition_code."),
        ({"origin_code": None}, "Missing attribute: origin_code."),
        ({"school": None}, "Missing attribute: school."),
        ({"grade_term": None}, "Missing attribute: grade_term."),
        ({"netid": "nobody"}, "Unknown netid: nobody."),
        ({"user_netid": "ghost"}, "Unknown user_netid: ghost."),
        ({"petition_code": "Q99"}, "Unknown petition_code: Q99."),
        ({"petition_code": "R10"}, "petition_code R10 is not active."),
        ({"origin_code": "NOPE"}, "Unknown origin_code: NOPE."),
        ({"school": "XX"}, "Unknown school: XX."),
        ({"grade_term": "2024F"}, "grade_term must look like 24F or 24W=L"),
        ({"grade_term": "24Q"}, "grade_term must look like 24F or 24W=L"),
        ({"grade_term": "24F=LL"}, "grade_term must look like 24F or 24W=L"),
        ({"netid": 12345}, "netid must be a string."),
        ({"decision": ["a"]}, "decision must be a string."),
        ({"netid": "   "}, "netid must not be empty."),
        ({"decision": "x" * 256}, "decision is longer than 255 characters."),
        ({"netid": "f006kdf\x00"}, "netid contains control characters."),
        ({"surprise": "1"}, "Unknown attribute: surprise."),
    ],
)
def test_each_validation_failure_is_named(
    api: TestClient, writer: dict[str, str], changes: dict[str, Any], expected: str
) -> None:
    fields = petition()
    fields.update(changes)
    fields = {k: v for k, v in fields.items() if v is not None}
    message = problems(submit(api, writer, fields))
    assert expected in message, message


def test_all_problems_are_named_at_once(api: TestClient, writer: dict[str, str]) -> None:
    fields = {"netid": "nobody", "petition_code": "Q99", "grade_term": "x", "bogus": 1}
    message = problems(submit(api, writer, fields))
    for expected in (
        "Unknown attribute: bogus.",
        "Missing attribute: origin_code.",
        "Missing attribute: school.",
        "grade_term must look like",
        "Unknown netid: nobody.",
        "Unknown petition_code: Q99.",
    ):
        assert expected in message, message
    assert message.startswith("['") and message.endswith("']")  # seed 000's failed sample


def test_a_value_with_a_quote_keeps_seed_000s_look(api: TestClient, writer: dict[str, str]) -> None:
    """Python's str(list) would switch to double quotes here; the message keeps single ones."""
    message = problems(submit(api, writer, petition(netid="o'brien", user_netid="back\\slash")))
    assert message == "['Unknown netid: o\\'brien.', 'Unknown user_netid: back\\\\slash.']"


def test_a_confidential_student_is_unknown_without_the_private_scope(
    api: TestClient, writer: dict[str, str], private_writer: dict[str, str]
) -> None:
    message = problems(submit(api, writer, petition(netid=CONFIDENTIAL)))
    assert message == f"['Unknown netid: {CONFIDENTIAL}.']"  # exactly as for a stranger
    task = submit(api, private_writer, petition(netid=CONFIDENTIAL))
    assert task["status"] == "complete", task
    # Hidden from the non-private reader, visible to the private one.
    assert api.get(task["path"], headers=writer).status_code == 404
    assert api.get(task["path"], headers=private_writer).status_code == 200


def test_idempotency_key_answers_the_same_task(api: TestClient, writer: dict[str, str]) -> None:
    body = {"petition": petition(grade_term="25S")}
    first = post(api, writer, body, **{"Idempotency-Key": "petition-abc"})
    again = post(api, writer, body, **{"Idempotency-Key": "petition-abc"})
    assert first.status_code == again.status_code == 202
    assert first.headers["location"] == again.headers["location"]
    other = post(
        api, writer, {"petition": petition(grade_term="25X")}, **{"Idempotency-Key": "petition-abc"}
    )
    assert other.status_code == 422
    assert wait_task(api, first.headers["location"], writer)["status"] == "complete"


def _count_for(settings: Settings, task_id: str) -> int:
    stmt = select(func.count()).where(Petition.created_by_task == task_id)
    return read(settings, lambda connection: int(connection.scalar(stmt) or 0))


def test_a_redelivered_task_creates_one_petition(
    api: TestClient, settings: Settings, writer: dict[str, str]
) -> None:
    r = post(api, writer, {"petition": petition(grade_term="25W")})
    location = r.headers["location"]
    task_id = location.rsplit("/", 1)[-1]
    done = wait_task(api, location, writer)
    assert done["status"] == "complete"

    # The handler run twice more by hand, as a worker whose lease expired would.
    def run_handler(connection: Connection) -> str:
        row = connection.execute(select(*TASKS.c).where(TASKS.c.id == task_id)).one()
        return create_petition(connection, ClaimedTask.from_row(row)).path

    async def twice(runtime: Runtime) -> list[str]:
        return [await runtime.db.write(run_handler) for _ in range(2)]

    assert run_db(settings, twice) == [done["path"], done["path"]]
    assert _count_for(settings, task_id) == 1

    # And through the worker: the task queued again (say, a restored backup) completes the same.
    execute(
        settings,
        update(Task)
        .where(Task.id == task_id)
        .values(
            status="accepted",
            completed_date=None,
            path=None,
            message=None,
            locked_by=None,
            locked_until=None,
        ),
    )
    again = wait_task(api, location, writer)
    assert again["status"] == "complete"
    assert again["path"] == done["path"]
    assert _count_for(settings, task_id) == 1


def test_a_task_of_another_sub_is_not_found(
    api: TestClient, writer: dict[str, str], accounts: Accounts
) -> None:
    r = post(api, writer, {"petition": petition()})
    other = accounts.headers([PETITIONS_WRITE], sub="someone-else")
    assert api.get(r.headers["location"], headers=other).status_code == 404
    wait_task(api, r.headers["location"], writer)


def test_hostile_payloads_never_500(api: TestClient, writer: dict[str, str]) -> None:
    for fields in (
        {"netid": {"$gt": ""}},
        {"netid": "a" * 10_000, "petition_code": "Q" * 1000},
        {"netid": "f006kdf'; DROP TABLE petitions; --", "petition_code": "Q41"},
        {"netid": "\u202e\u0000", "grade_term": "\ud7ff"},
        {str(i): i for i in range(200)},
    ):
        task = submit(api, writer, fields)
        assert task["status"] == "error", task
        assert HEX24.fullmatch(task["id"])
