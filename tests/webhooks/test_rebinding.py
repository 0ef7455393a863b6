"""DNS rebinding: a URL that passed the check when the subscription was made is checked again,
after a fresh lookup, at every delivery. Here the subscription's host (`localhost`) resolves to
a loopback address at delivery, and the service allows none: the attempt is refused and logged,
and nothing reaches the receiver."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ
from registrar.core.clock import utcnow
from registrar.core.settings import Settings
from registrar.webhooks import repository
from registrar.webhooks.service import new_secret
from tests.support.accounts import Accounts
from tests.support.databases import make_settings, write
from tests.support.events import load_enrollments
from tests.support.receivers import receiver


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url, webhook_retry_base_seconds=0.1, webhook_max_attempts=2)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def test_a_host_that_now_resolves_to_loopback_is_refused(
    api: TestClient, settings: Settings, accounts: Accounts
) -> None:
    headers = accounts.headers([ENROLLMENTS_READ], sub="svc-rebound")
    with receiver() as hooks:
        url = f"http://localhost:{hooks.port}/rebound"
        # As the API would refuse it now:
        refused = api.post(
            "/api/webhooks", json={"url": url, "types": ["enrollment.created"]}, headers=headers
        )
        assert refused.status_code == 400 and "loopback" in refused.json()["errors"][0]
        # Stored as if the name had resolved to a public address when it was made.
        hook_id = secrets.token_hex(12)
        write(
            settings,
            repository.insert_webhook,
            {
                "id": hook_id,
                "sub": "svc-rebound",
                "url": url,
                "types": ["enrollment.created"],
                "secret": new_secret(),
                "created": utcnow(),
                "status": "active",
            },
        )
        tag = secrets.token_hex(3)
        load_enrollments(settings, f"REBIND.{tag}", [f"f{tag}r"])
        deadline = time.monotonic() + 15
        while (
            len(rows := api.get(f"/api/webhooks/{hook_id}/deliveries", headers=headers).json()) < 2
        ):
            assert time.monotonic() < deadline, rows
            time.sleep(0.05)
        for row in rows:
            assert row["status_code"] is None
            assert "a loopback address" in row["error"], row
        assert not hooks.received
