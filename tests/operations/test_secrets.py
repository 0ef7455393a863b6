"""Private signing keys are never served, and keys and tokens never reach a log line."""

from __future__ import annotations

import io
import json
import logging
import time

from fastapi.testclient import TestClient
from sqlalchemy import text

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ, PETITIONS_WRITE
from tests.support.accounts import Accounts
from tests.support.databases import execute, make_settings

ENROLLMENTS = "/api/academic/enrollments"


def test_no_endpoint_serves_private_signing_keys(api: TestClient, database_url: str) -> None:
    jwks = api.get("/api/jwks").json()
    for key in jwks["keys"]:
        assert set(key) <= {"kty", "crv", "x", "kid", "alg", "use"}  # no "d": public only
    private = _query(database_url, "SELECT private_key FROM signing_keys")
    assert private
    spec = api.get("/openapi.json").text
    for pem in private:
        body = pem.split("-----")[2].strip() if "-----" in pem else pem
        assert body[:40] not in api.get("/api/jwks").text
        assert body[:40] not in spec
    assert not [p for p in json.loads(spec)["paths"] if "private" in p or "signing" in p]


def _query(database_url: str, sql: str) -> list[str]:
    """First column of `sql`."""
    return [str(row[0]) for row in execute(make_settings(database_url), text(sql))]


def test_logs_are_json_and_never_contain_keys_or_tokens(
    api: TestClient, accounts: Accounts, database_url: str
) -> None:
    key = accounts.key("svc-logs", [ENROLLMENTS_READ])
    settings = make_settings(database_url, log_json=True, run_worker=False)
    stream = io.StringIO()
    with TestClient(create_app(settings)) as client:
        # create_app installed the JSON handler on "registrar"; tee it into our buffer.
        logger = logging.getLogger("registrar")
        ours = next(h for h in logger.handlers if getattr(h, "_registrar_handler", False))
        capture = logging.StreamHandler(stream)
        capture.filters = ours.filters
        capture.setFormatter(ours.formatter)
        logger.addHandler(capture)
        try:
            login = client.post("/api/jwt", headers={"Authorization": key})
            assert login.status_code == 200
            token = login.json()["jwt"]
            got = client.get(
                ENROLLMENTS,
                headers={"Authorization": f"Bearer {token}", "X-Correlation-ID": "trace-42"},
            )
            assert got.status_code == 200
            bad = client.get(ENROLLMENTS, headers={"Authorization": f"Bearer {token}x"})
            assert bad.status_code == 401
            # A library that quotes a secret by accident is scrubbed too.
            logging.getLogger("registrar.test").warning("oops %s %s", key, token)
        finally:
            logger.removeHandler(capture)
    out = stream.getvalue()
    assert key not in out and token not in out
    assert token.split(".")[1] not in out and token.split(".")[2] not in out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    access = [r for r in lines if r["logger"] == "registrar.access"]
    mine = next(r for r in access if r.get("request_id") == "trace-42")
    assert mine["method"] == "GET"
    assert mine["route"] == ENROLLMENTS
    assert mine["status"] == 200
    assert mine["sub"] == "svc-logs"
    assert isinstance(mine["duration_ms"], float)
    assert any(r["status"] == 401 and "sub" not in r for r in access)
    assert any("[redacted]" in r["message"] for r in lines if r["logger"] == "registrar.test")


def test_the_worker_logs_as_the_api_does_with_the_requests_correlation_id(
    accounts: Accounts, database_url: str
) -> None:
    """JSON lines through the same handler, redaction included, and the task's lines carry the
    X-Correlation-ID of the request that queued it."""

    key = accounts.key("svc-worker-logs", [PETITIONS_WRITE])
    settings = make_settings(database_url, log_json=True, worker_poll_seconds=0.05)
    stream = io.StringIO()
    with TestClient(create_app(settings)) as client:
        logger = logging.getLogger("registrar")
        ours = next(h for h in logger.handlers if getattr(h, "_registrar_handler", False))
        capture = logging.StreamHandler(stream)
        capture.filters = ours.filters
        capture.setFormatter(ours.formatter)
        logger.addHandler(capture)
        try:
            token = client.post("/api/jwt", headers={"Authorization": key}).json()["jwt"]
            headers = {"Authorization": f"Bearer {token}", "X-Correlation-ID": "trace-task-7"}
            r = client.post(
                "/api/academic/petitions",
                json={"petition": {"netid": "nobody", "school": token}},
                headers=headers,
            )
            assert r.status_code == 202, r.text
            task_id = r.headers["location"].rsplit("/", 1)[1]
            for _ in range(300):
                polled = client.get(r.headers["location"], headers=headers).json()
                if polled["status"] != "accepted":
                    break
                time.sleep(0.02)
            assert polled["status"] == "error"
            # The task's outcome line is written right after its commit: let it land.
            for _ in range(100):
                if f"task {task_id}" in stream.getvalue():
                    break
                time.sleep(0.02)
        finally:
            logger.removeHandler(capture)
    out = stream.getvalue()
    assert token not in out and key not in out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    worker = [r for r in lines if r["logger"] == "registrar.worker" and r.get("task_id") == task_id]
    assert worker, out
    line = worker[0]
    assert line["request_id"] == "trace-task-7"
    assert line["outcome"] == "error" and line["resource"] == "academic.petitions"
    assert line["level"] == "INFO" and line["time"].endswith("Z")
    access = [r for r in lines if r["logger"] == "registrar.access"]
    assert any(r["request_id"] == "trace-task-7" and r["status"] == 202 for r in access)
