"""Revoking an account, or removing a scope from it, reaches the tokens it already holds: in every
API process within REGISTRAR_ACCOUNT_REFRESH_SECONDS (a revoked account's token is 401, a removed
scope 403), and in the worker before it applies a task the account queued (the task ends `error`).
Attacked as the client would: over HTTP, with the token it was given before the operator acted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from registrar.app import create_app
from registrar.auth.scopes import (
    ENROLLMENTS_READ,
    ENROLLMENTS_WRITE,
    PEOPLE_PRIVATE,
    PETITIONS_WRITE,
)
from registrar.auth.service import issue_service_account
from registrar.core.settings import Settings
from registrar.tasks.models import Task
from tests.support.accounts import cli, create_account
from tests.support.databases import POSTGRES_ADMIN_URL, execute, make_settings, with_runtime
from tests.support.seeding import seed_known_enrollments
from tests.support.servers import free_port, serve
from tests.support.tasks import JSON, patch_body, wait_task

ENROLLMENTS = "/api/academic/enrollments"
REFRESH = 0.5  # REGISTRAR_ACCOUNT_REFRESH_SECONDS for these tests (default 10)


@pytest.fixture(scope="module")
def fast(database_url: str) -> Iterator[TestClient]:
    """The API with a short account refresh, over the module's database. No worker: tasks wait in
    the queue until `run_worker_until_done` runs them."""
    settings = make_settings(database_url, account_refresh_seconds=REFRESH, run_worker=False)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def enrollments(fast: TestClient, settings: Settings) -> list[dict[str, Any]]:
    return seed_known_enrollments(settings)


def login(api: TestClient | httpx.Client, key: str, scope: str | None = None) -> dict[str, str]:
    params = {"scope": scope} if scope else {}
    response = api.post("/api/jwt", headers={"Authorization": key}, params=params)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['jwt']}"}


def until(check: Callable[[], bool], within: float) -> float:
    """Seconds until `check()` held; fails after `within`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < within, "not within the promised time"
        time.sleep(0.05)
    return time.monotonic() - start


def visible_id(enrollments: list[dict[str, Any]]) -> str:
    return next(e["id"] for e in enrollments if e["netid"] == "f001nkx")


def test_revoked_accounts_tokens_are_401_within_the_refresh(
    fast: TestClient, database_url: str, enrollments: list[dict[str, Any]]
) -> None:
    key = create_account(database_url, "svc-revoke", [ENROLLMENTS_READ, ENROLLMENTS_WRITE])
    headers = login(fast, key)
    target = f"{ENROLLMENTS}/{visible_id(enrollments)}"
    assert fast.get(ENROLLMENTS, headers=headers).status_code == 200
    assert fast.get(target, headers=headers).status_code == 200

    assert cli(database_url, "clients", "revoke", "svc-revoke")[0] == 0
    took = until(lambda: fast.get(target, headers=headers).status_code == 401, REFRESH + 5)
    assert took <= REFRESH + 5
    for response in (
        fast.get(ENROLLMENTS, headers=headers),
        fast.get(target, headers=headers),
        fast.patch(target, headers={**headers, **JSON}, json=patch_body("2020-03-05T17:53:46Z")),
        fast.get("/api/tasks/" + "0" * 24, headers=headers),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "revoked" in response.json()["detail"]
    # ... and its key no longer logs in.
    assert fast.post("/api/jwt", headers={"Authorization": key}).status_code == 401


def test_removed_scope_is_403_for_issued_tokens_and_comes_back_when_granted(
    fast: TestClient, database_url: str, enrollments: list[dict[str, Any]]
) -> None:
    key = create_account(
        database_url, "svc-narrowed", [ENROLLMENTS_READ, ENROLLMENTS_WRITE, PEOPLE_PRIVATE]
    )
    headers = login(fast, key)
    target = f"{ENROLLMENTS}/{visible_id(enrollments)}"
    hidden = next(e["id"] for e in enrollments if e["netid"] == "f00conf")
    body = patch_body("2020-03-05T17:53:46Z")
    assert fast.get(f"{ENROLLMENTS}/{hidden}", headers=headers).status_code == 200

    code, out, err = cli(
        database_url, "clients", "update", "svc-narrowed", "--scopes", ENROLLMENTS_READ
    )
    assert code == 0, err
    assert "updated svc-narrowed" in out
    until(
        lambda: fast.patch(target, headers={**headers, **JSON}, json=body).status_code == 403,
        REFRESH + 5,
    )
    refused = fast.patch(target, headers={**headers, **JSON}, json=body)
    assert refused.json()["errors"] == [f"missing scope: {ENROLLMENTS_WRITE}"]
    # Reads the account still holds keep working; the private scope is gone with the rest, so a
    # confidential person's enrollment is now exactly as absent as one that never existed.
    assert fast.get(target, headers=headers).status_code == 200
    assert fast.get(f"{ENROLLMENTS}/{hidden}", headers=headers).status_code == 404
    assert hidden not in {e["id"] for e in fast.get(ENROLLMENTS, headers=headers).json()}
    # A new login gets only what is granted now.
    again = fast.post("/api/jwt", headers={"Authorization": key}).json()
    assert again["accepted_scopes"] == [ENROLLMENTS_READ]

    # Granted again: the token carries the scope itself, so it works again.
    assert cli(database_url, "clients", "update", "svc-narrowed", "--scopes",
               f"{ENROLLMENTS_READ} {ENROLLMENTS_WRITE}")[0] == 0  # fmt: skip
    until(
        lambda: fast.patch(target, headers={**headers, **JSON}, json=body).status_code == 202,
        REFRESH + 5,
    )


def test_a_narrowed_token_gains_nothing_from_wider_grants(
    fast: TestClient, database_url: str
) -> None:
    """Effective scopes are the token's own scopes cut by the grants, never the grants."""
    key = create_account(database_url, "svc-asked-less", [ENROLLMENTS_READ, ENROLLMENTS_WRITE])
    headers = login(fast, key, scope=ENROLLMENTS_READ)
    response = fast.patch(
        f"{ENROLLMENTS}/x", headers={**headers, **JSON}, json=patch_body("2020-03-05T17:53:46Z")
    )
    assert response.status_code == 403


def test_update_and_revoke_refuse_unknown_accounts_and_scopes(database_url: str) -> None:
    code, _out, err = cli(database_url, "clients", "update", "nobody", "--scopes", ENROLLMENTS_READ)
    assert code == 1 and err.startswith("error: no service account")
    code, _out, err = cli(database_url, "clients", "update", "nobody", "--scopes", "api:everything")
    assert code == 1 and "unknown scope" in err
    code, _out, err = cli(database_url, "clients", "revoke", "nobody")
    assert code == 1 and err.startswith("error: no service account")


def test_a_reinstated_account_does_not_revive_tokens_issued_before_its_revocation(
    fast: TestClient, database_url: str, settings: Settings
) -> None:
    key = create_account(database_url, "svc-reinstated", [ENROLLMENTS_READ])
    old = login(fast, key)
    assert cli(database_url, "clients", "revoke", "svc-reinstated")[0] == 0
    time.sleep(1.1)  # tokens carry whole seconds: the new one must be issued a second later

    async def reinstate(runtime: Any) -> str:
        key, _kept = await issue_service_account(
            runtime.db,
            settings,
            sub="svc-reinstated",
            name="n",
            email="e@x",
            scopes=ENROLLMENTS_READ,
        )
        return key

    new = login(fast, with_runtime(settings, reinstate))
    until(lambda: fast.get(ENROLLMENTS, headers=new).status_code == 200, REFRESH + 5)
    assert fast.get(ENROLLMENTS, headers=old).status_code == 401


def test_clients_list_shows_status_grants_and_only_the_keys_public_id(
    database_url: str, fast: TestClient
) -> None:
    key = create_account(database_url, "svc-listed", [ENROLLMENTS_READ, PETITIONS_WRITE])
    gone = create_account(database_url, "svc-delisted", [ENROLLMENTS_READ])
    assert cli(database_url, "clients", "revoke", "svc-delisted")[0] == 0
    code, out, _err = cli(database_url, "clients", "list")
    assert code == 0
    # Keys are rk_<8-character id>_<secret>: the id is shown, by design; the secret never.
    assert key.startswith("rk_") and key[11] == "_"
    key_id, secret = key[:11], key[12:]
    line = next(row for row in out.splitlines() if "svc-listed" in row)
    assert key_id in line and "active" in line
    assert ENROLLMENTS_READ in out and PETITIONS_WRITE in out
    assert "revoked" in next(row for row in out.splitlines() if "svc-delisted" in row)
    for shown in (secret, gone[12:]):
        # Not one run of 6 characters of a secret part is printed.
        assert not any(shown[i : i + 6] in out for i in range(len(shown) - 5))


# --- the worker ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_worker(database_url: str) -> Iterator[TestClient]:
    """An API process without a worker: tasks wait in the queue until `run_worker` runs them."""
    settings = make_settings(database_url, run_worker=False, account_refresh_seconds=REFRESH)
    with TestClient(create_app(settings)) as client:
        yield client


def run_worker_until_done(database_url: str, task_ids: list[str]) -> dict[str, Any]:
    """Start an API process with its worker until these tasks are finished; their rows."""
    settings = make_settings(database_url)
    table = Task.__table__
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 20
        while True:
            rows = execute(
                settings,
                select(table.c.id, table.c.status, table.c.message).where(table.c.id.in_(task_ids)),
            )
            if all(status != "accepted" for _id, status, _m in rows):
                return {i: {"status": s, "message": m} for i, s, m in rows}
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_worker_refuses_a_task_whose_requester_was_revoked_before_it_ran(
    no_worker: TestClient, database_url: str, settings: Settings, enrollments: list[dict[str, Any]]
) -> None:
    key = create_account(database_url, "svc-revoked-writer", [ENROLLMENTS_WRITE, PETITIONS_WRITE])
    headers = {**login(no_worker, key), **JSON}
    target = f"{ENROLLMENTS}/{visible_id(enrollments)}"
    patched = no_worker.patch(target, headers=headers, json=patch_body("2021-01-02T03:04:05Z"))
    posted = no_worker.post(
        "/api/academic/petitions", headers=headers, json={"petition": {"netid": "f001nkx"}}
    )
    assert patched.status_code == posted.status_code == 202
    ids = [r.headers["Location"].rsplit("/", 1)[-1] for r in (patched, posted)]
    assert cli(database_url, "clients", "revoke", "svc-revoked-writer")[0] == 0

    done = run_worker_until_done(database_url, ids)
    for task_id in ids:
        assert done[task_id]["status"] == "error"
        assert "revoked before the task ran" in done[task_id]["message"]
    # Nothing was written.
    reader = login(no_worker, create_account(database_url, "svc-check", [
        ENROLLMENTS_READ, "api:academic:enrollments:read.sensitive"]))  # fmt: skip
    assert no_worker.get(target, headers=reader).json()["course_assessment"] != {
        "submit_date": "2021-01-02T03:04:05Z",
        "opt_out_date": None,
    }


def test_worker_refuses_a_task_whose_requester_lost_the_write_scope(
    no_worker: TestClient, database_url: str, enrollments: list[dict[str, Any]]
) -> None:
    key = create_account(database_url, "svc-demoted", [ENROLLMENTS_READ, ENROLLMENTS_WRITE])
    headers = {**login(no_worker, key), **JSON}
    target = f"{ENROLLMENTS}/{visible_id(enrollments)}"
    queued = no_worker.patch(target, headers=headers, json=patch_body("2021-01-02T03:04:05Z"))
    assert queued.status_code == 202
    code, _out, _err = cli(
        database_url, "clients", "update", "svc-demoted", "--scopes", ENROLLMENTS_READ
    )
    assert code == 0
    run_worker_until_done(database_url, [queued.headers["Location"].rsplit("/", 1)[-1]])
    # The requester still holds a valid token: it polls and reads why.
    task = wait_task(no_worker, queued.headers["Location"], headers)
    assert task["status"] == "error"
    assert task["message"] == (
        f"['The requester\\'s service account no longer holds the scope {ENROLLMENTS_WRITE}; "
        "nothing was changed.']"
    )
    assert task["path"].endswith(target)


def test_worker_applies_ferpa_as_the_requester_stands_when_the_task_runs(
    no_worker: TestClient, database_url: str, enrollments: list[dict[str, Any]]
) -> None:
    key = create_account(
        database_url, "svc-unprivate", [ENROLLMENTS_READ, ENROLLMENTS_WRITE, PEOPLE_PRIVATE]
    )
    headers = {**login(no_worker, key), **JSON}
    hidden = next(e["id"] for e in enrollments if e["netid"] == "f00conf")
    queued = no_worker.patch(
        f"{ENROLLMENTS}/{hidden}", headers=headers, json=patch_body("2021-01-02T03:04:05Z")
    )
    assert queued.status_code == 202
    code, _out, _err = cli(
        database_url,
        *("clients", "update", "svc-unprivate", "--scopes"),
        f"{ENROLLMENTS_READ} {ENROLLMENTS_WRITE}",
    )
    assert code == 0
    run_worker_until_done(database_url, [queued.headers["Location"].rsplit("/", 1)[-1]])
    task = wait_task(no_worker, queued.headers["Location"], headers)
    # The confidential student's enrollment is, to this requester now, one that does not exist.
    assert task["status"] == "error"
    assert task["message"] == f"['Enrollment {hidden} does not exist.']"


# --- two API processes (PostgreSQL) ----------------------------------------------------------


@pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="needs PostgreSQL (REGISTRAR_TEST_POSTGRES_URL)")
def test_two_api_processes_both_cut_a_revoked_token(database_url: str, fast: TestClient) -> None:
    env = {"REGISTRAR_ACCOUNT_REFRESH_SECONDS": "1"}
    ports = [free_port(), free_port()]
    procs = [serve(database_url, port, "--no-worker", **env) for port in ports]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        key = create_account(database_url, "svc-two-procs", [ENROLLMENTS_READ, ENROLLMENTS_WRITE])
        with httpx.Client(base_url=bases[0], timeout=10) as first:
            headers = login(first, key)
        body = patch_body("2020-03-05T17:53:46Z")

        def each(method: str, path: str, **kw: Any) -> list[int]:
            return [
                httpx.request(method, base + path, headers=headers, timeout=10, **kw).status_code
                for base in bases
            ]

        assert each("GET", ENROLLMENTS) == [200, 200]
        assert each("PATCH", f"{ENROLLMENTS}/nope", json=body) == [404, 404]

        assert cli(database_url, "clients", "update", "svc-two-procs", "--scopes",
                   ENROLLMENTS_READ)[0] == 0  # fmt: skip
        took = until(lambda: each("PATCH", f"{ENROLLMENTS}/nope", json=body) == [403, 403], 10)
        assert each("GET", ENROLLMENTS) == [200, 200]

        assert cli(database_url, "clients", "revoke", "svc-two-procs")[0] == 0
        took = max(took, until(lambda: each("GET", ENROLLMENTS) == [401, 401], 10))
        assert took < 1 + 3  # the refresh interval, and the time it takes to ask
    finally:
        for p in procs:
            assert p.terminate() == 0


def test_the_services_own_subs_are_reserved(database_url: str) -> None:
    """The periodic jobs' tasks name "registrar.scheduler" as requester: no account may take it
    (it would read their records and task.completed events), nor any "registrar." sub."""
    for sub in ("registrar.scheduler", "Registrar.other"):
        code, _out, err = cli(
            database_url,
            "clients",
            "create",
            "--sub",
            sub,
            *("--name", "x", "--email", "x@example.edu", "--scopes", ENROLLMENTS_READ),
        )
        assert code == 1 and "the service's own" in err, (sub, err)
