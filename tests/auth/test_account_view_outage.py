"""When the accounts cannot be read, a process keeps trusting its view of them for at most a
minute (the contract's bound on revocation), then refuses requests with 503 rather than trust it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from registrar.app import create_app
from registrar.auth import accounts, repository
from registrar.auth.scopes import ENROLLMENTS_READ
from tests.support.accounts import create_account
from tests.support.databases import make_settings

ENROLLMENTS = "/api/academic/enrollments"


@pytest.fixture()
def app(database_url: str) -> Iterator[TestClient]:
    settings = make_settings(database_url, account_refresh_seconds=0.2, run_worker=False)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_view_older_than_a_minute_is_not_trusted(
    app: TestClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = create_account(database_url, "outage-reader", [ENROLLMENTS_READ])
    response = app.post("/api/jwt", headers={"Authorization": key})
    assert response.status_code == 200, response.text
    bearer = {"Authorization": f"Bearer {response.json()['jwt']}"}
    assert app.get(ENROLLMENTS, headers=bearer).status_code == 200

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT ... FROM service_accounts", {}, Exception("down"))

    monkeypatch.setattr(repository, "accounts_changed_since", unreadable)
    view = app.app.state.runtime.accounts  # type: ignore[attr-defined]
    view._due = 0.0  # the next request must refresh, and cannot

    # Within the limit the last good view serves (a database blip does not stop reads).
    answer = app.get(ENROLLMENTS, headers=bearer)
    assert answer.status_code == 200, answer.text

    # Past it, the request is refused: a revocation the view missed could be a minute old.
    view._due = 0.0
    view._read_at = time.monotonic() - accounts.STALE_LIMIT_SECONDS - 1
    answer = app.get(ENROLLMENTS, headers=bearer)
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "Retry-After" in answer.headers

    # Once the accounts can be read again, so can the enrollments.
    monkeypatch.undo()
    view._due = 0.0
    assert app.get(ENROLLMENTS, headers=bearer).status_code == 200
