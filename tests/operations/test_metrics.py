"""GET /metrics: request figures by route template, and the task queue's from the database."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.support.databases import POSTGRES_ADMIN_URL, execute, make_settings

ENROLLMENTS = "/api/academic/enrollments"


def _insert_old_accepted_task(database_url: str) -> None:
    execute(
        make_settings(database_url),
        text(
            "INSERT INTO tasks (id, resource, action, requester, sub, private_scope, "
            "status, request_date, worker_data, base_url, called_url, attempts, "
            "max_attempts, run_at) VALUES ('aaaaaaaaaaaaaaaaaaaaaaaa', "
            "'academic.petitions', 'POST', '{}', 'svc-metrics', false, 'accepted', "
            ":old, '{}', 'http://x', 'http://x', 0, 5, :future)"
        ),
        {
            "old": _ago(120),
            # Far in the future, so a worker (another test's app) leaves it queued.
            "future": _ago(-3600),
        },
    )


def _ago(seconds: float) -> object:
    import datetime as dt

    value = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    return value.replace(tzinfo=None) if not POSTGRES_ADMIN_URL else value


def test_metrics(api: TestClient, all_scopes: dict[str, str], database_url: str) -> None:
    _insert_old_accepted_task(database_url)
    api.get(f"{ENROLLMENTS}/NOPE-x-student", headers=all_scopes)
    api.get("/not/a/route")
    body = api.get("/metrics")
    assert body.status_code == 200
    assert body.headers["content-type"].startswith("text/plain")
    text_ = body.text
    assert (
        'registrar_http_request_duration_seconds_bucket{le="0.005",method="GET",'
        'route="/api/academic/enrollments/{enrollment_id}",status="404"}' in text_
    )
    assert 'registrar_http_requests_total{method="GET",route="<unmatched>",status="404"}' in text_
    assert 'registrar_tasks{status="accepted"} 1.0' in text_
    assert 'registrar_tasks{status="error"}' in text_
    age = next(
        float(line.split()[-1])
        for line in text_.splitlines()
        if line.startswith("registrar_task_oldest_accepted_age_seconds ")
    )
    assert 100 < age < 1000
    assert "registrar_database_up 1.0" in text_
    assert "/metrics" not in api.get("/openapi.json").json()["paths"]
