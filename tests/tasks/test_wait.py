"""Waiting instead of polling, with the in-process worker: `Prefer: wait=S` on both writes answers
200 with the finished task; `GET /api/tasks/{id}?wait=S` answers as soon as the task is done."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registrar.auth.scopes import ENROLLMENTS_WRITE, PETITIONS_WRITE
from registrar.core.settings import Settings
from tests.support.accounts import Accounts
from tests.support.seeding import seed_enrollments, seed_petitions
from tests.support.tasks import JSON, patch_body

PETITION = {
    "netid": "f006kdf",
    "petition_code": "Q41",
    "origin_code": "UREG",
    "school": "UG",
    "grade_term": "24F",
}


@pytest.fixture(scope="module")
def ids(api: TestClient, settings: Settings) -> list[str]:
    seed_petitions(settings)
    return seed_enrollments(settings, 5)


@pytest.fixture(scope="module")
def writer(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([ENROLLMENTS_WRITE, PETITIONS_WRITE], sub="svc-waiter")


def test_prefer_wait_answers_the_finished_task(
    api: TestClient, ids: list[str], writer: dict[str, str]
) -> None:
    started = time.monotonic()
    r = api.patch(
        f"/api/academic/enrollments/{ids[0]}",
        headers={**writer, **JSON, "Prefer": "wait=10"},
        json=patch_body("2020-03-05T17:53:46Z"),
    )
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 5
    task = r.json()
    assert task["status"] == "complete" and task["path"].endswith(ids[0])
    assert r.headers["Preference-Applied"] == "wait=10"
    assert r.headers["Location"] == f"/api/tasks/{task['id']}"
    assert api.get(r.headers["Location"], headers=writer).json() == task


def test_prefer_wait_on_a_petition_answers_its_error_too(
    api: TestClient, ids: list[str], writer: dict[str, str]
) -> None:
    good = api.post(
        "/api/academic/petitions",
        headers={**writer, **JSON, "Prefer": "respond-async, wait=10"},
        json={"petition": PETITION},
    )
    assert good.status_code == 200, good.text
    assert good.json()["status"] == "complete"
    bad = api.post(
        "/api/academic/petitions",
        headers={**writer, **JSON, "Prefer": "wait=10"},
        json={"petition": {**PETITION, "petition_code": "Q99"}},
    )
    assert bad.status_code == 200 and bad.json()["status"] == "error"
    assert "Q99" in bad.json()["message"]


@pytest.mark.parametrize("prefer", ["wait=0", "wait=abc", "handling=lenient", "wait=-3"])
def test_without_a_usable_wait_preference_a_write_answers_202(
    api: TestClient, ids: list[str], writer: dict[str, str], prefer: str
) -> None:
    r = api.patch(
        f"/api/academic/enrollments/{ids[1]}",
        headers={**writer, **JSON, "Prefer": prefer},
        json=patch_body(None, "2020-03-05T17:53:46Z"),
    )
    assert r.status_code == 202 and r.json() == {"status": "accepted"}
    assert "Preference-Applied" not in r.headers


def test_get_with_wait(
    api: TestClient, ids: list[str], writer: dict[str, str], accounts: Accounts
) -> None:
    r = api.patch(
        f"/api/academic/enrollments/{ids[2]}",
        headers={**writer, **JSON},
        json=patch_body("2020-03-05T17:53:46Z"),
    )
    location = r.headers["location"]
    task: dict[str, Any] = api.get(location, headers=writer, params={"wait": "10"}).json()
    assert task["status"] == "complete"
    started = time.monotonic()
    assert api.get(location, headers=writer, params={"wait": "10"}).json() == task
    assert time.monotonic() - started < 2  # done already: no wait
    other = accounts.headers([ENROLLMENTS_WRITE], sub="svc-not-the-requester")
    assert api.get(location, headers=other, params={"wait": "10"}).status_code == 404
    for bad in ("x", "-1", "nan", "inf", "٣"):
        answer = api.get(location, headers=writer, params={"wait": bad})
        assert answer.status_code == 400, bad
