"""Webhook subscriptions over HTTP: create (the secret once), list, read, change, delete, only
one's own; the URL rules and the SSRF guard; Idempotency-Key."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.auth.scopes import ENROLLMENTS_READ
from registrar.core.settings import Settings
from tests.support.accounts import Accounts

# A public address as a literal: accepted without DNS (nothing is delivered in this module).
PUBLIC = "http://93.184.215.14/registrar-events"


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    from tests.support.databases import make_settings

    return make_settings(database_url, run_worker=False)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def owner(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([ENROLLMENTS_READ], sub="svc-hooks-owner")


@pytest.fixture(scope="module")
def other(accounts: Accounts) -> dict[str, str]:
    return accounts.headers([], sub="svc-hooks-other")


def create(api: TestClient, headers: dict[str, str], **body: object) -> dict[str, object]:
    body = {"url": PUBLIC, "types": ["enrollment.updated"], **body}
    response = api.post("/api/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/webhooks/{response.json()['id']}"
    return dict(response.json())


def test_create_shows_the_secret_once_then_never(api: TestClient, owner: dict[str, str]) -> None:
    made = create(api, owner, types=["enrollment.updated", "petition.created"])
    assert set(made) == {
        "id",
        "url",
        "types",
        "secret",
        "created",
        "status",
        "failing_since",
        "disabled_at",
    }
    assert made["url"] == PUBLIC and made["types"] == ["enrollment.updated", "petition.created"]
    assert made["status"] == "active" and made["failing_since"] is None
    secret = str(made["secret"])
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    got = api.get(f"/api/webhooks/{made['id']}", headers=owner)
    assert got.status_code == 200
    assert "secret" not in got.json() and got.json()["created"] == made["created"]
    listed = api.get("/api/webhooks", headers=owner).json()
    assert made["id"] in [w["id"] for w in listed]
    assert all("secret" not in w for w in listed)
    assert secret not in api.get("/api/webhooks", headers=owner).text


def test_another_account_sees_nothing_and_changes_nothing(
    api: TestClient, owner: dict[str, str], other: dict[str, str]
) -> None:
    made = create(api, owner)
    path = f"/api/webhooks/{made['id']}"
    assert made["id"] not in [w["id"] for w in api.get("/api/webhooks", headers=other).json()]
    for response in (
        api.get(path, headers=other),
        api.delete(path, headers=other),
        api.patch(path, json={"types": ["petition.created"]}, headers=other),
        api.get(f"{path}/deliveries", headers=other),
        api.post(f"{path}/deliveries/{'0' * 24}/retry", headers=other),
    ):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert api.get(path, headers=owner).status_code == 200
    # An unknown id and a malformed one answer alike.
    for missing in ("f" * 24, "not-an-id", "x" * 300):
        assert api.get(f"/api/webhooks/{missing}", headers=owner).status_code == 404


def test_delete(api: TestClient, owner: dict[str, str]) -> None:
    made = create(api, owner)
    path = f"/api/webhooks/{made['id']}"
    assert api.delete(path, headers=owner).status_code == 204
    assert api.get(path, headers=owner).status_code == 404
    assert api.delete(path, headers=owner).status_code == 404


def test_change_checks_as_create_does(api: TestClient, owner: dict[str, str]) -> None:
    made = create(api, owner)
    path = f"/api/webhooks/{made['id']}"
    changed = api.patch(path, json={"types": ["petition.created"]}, headers=owner)
    assert changed.status_code == 200, changed.text
    assert changed.json()["types"] == ["petition.created"] and "secret" not in changed.json()
    refused = api.patch(path, json={"url": "http://127.0.0.1:8000/x"}, headers=owner)
    assert refused.status_code == 400
    assert "loopback" in refused.json()["errors"][0]
    assert api.patch(path, json={"status": "disabled"}, headers=owner).status_code == 400
    assert api.patch(path, json={"secret": "whsec_AAAA"}, headers=owner).status_code == 400
    assert api.get(path, headers=owner).json()["url"] == PUBLIC


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),  # 127.0.0.1 written as one number
        ("http://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://0.0.0.0/hook", "public"),
        ("http://100.64.0.1/hook", "public"),  # carrier-grade NAT
    ],
)
def test_private_targets_are_refused(
    api: TestClient, owner: dict[str, str], url: str, why: str
) -> None:
    response = api.post(
        "/api/webhooks", json={"url": url, "types": ["task.completed"]}, headers=owner
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert why in response.json()["errors"][0]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"url": "ftp://93.184.215.14/x", "types": ["task.completed"]}, "http or https"),
        ({"url": "http://user:pw@93.184.215.14/x", "types": ["task.completed"]}, "credentials"),
        ({"url": "http:///x", "types": ["task.completed"]}, "host"),
        ({"url": "http://93.184.215.14:99999/x", "types": ["task.completed"]}, "url"),
        ({"url": "http://93.184.215.14/" + "a" * 2100, "types": ["task.completed"]}, "2048"),
        ({"url": "http://exämple.edu/x", "types": ["task.completed"]}, "ASCII"),
        ({"url": 7, "types": ["task.completed"]}, "string"),
        ({"url": PUBLIC, "types": []}, "non-empty"),
        ({"url": PUBLIC, "types": "task.completed"}, "non-empty"),
        ({"url": PUBLIC, "types": ["enrollment.exploded"]}, "is not one of"),
        ({"url": PUBLIC, "types": ["task.completed", "task.completed"]}, "once"),
        ({"url": PUBLIC}, "Missing attribute: types"),
        ({"url": PUBLIC, "types": ["task.completed"], "secret": "x"}, "Unknown attribute"),
        ({"url": "http://no-such-host.invalid/x", "types": ["task.completed"]}, "resolve"),
    ],
)
def test_bad_bodies_are_400(
    api: TestClient, owner: dict[str, str], body: dict[str, object], error: str
) -> None:
    response = api.post("/api/webhooks", json=body, headers=owner)
    assert response.status_code == 400, response.text
    assert any(error in e for e in response.json()["errors"]), response.json()


def test_malformed_requests(api: TestClient, owner: dict[str, str]) -> None:
    assert (
        api.post("/api/webhooks", json={"url": PUBLIC, "types": ["task.completed"]}).status_code
        == 401
    )
    not_json = api.post(
        "/api/webhooks", content=b"url=x", headers={**owner, "Content-Type": "text/plain"}
    )
    assert not_json.status_code == 415
    broken = api.post(
        "/api/webhooks", content=b"{", headers={**owner, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert api.post("/api/webhooks", json=[1], headers=owner).status_code == 400


def test_idempotency_key(api: TestClient, owner: dict[str, str]) -> None:
    body = {"url": PUBLIC, "types": ["task.completed"]}
    key = {**owner, "Idempotency-Key": "hook-1"}
    first = api.post("/api/webhooks", json=body, headers=key)
    again = api.post("/api/webhooks", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other_body = api.post(
        "/api/webhooks", json={**body, "types": ["enrollment.updated"]}, headers=key
    )
    assert other_body.status_code == 422
    mine = [w["id"] for w in api.get("/api/webhooks", headers=owner).json()]
    assert mine.count(first.json()["id"]) == 1


def test_allow_private_lets_local_receivers_in(database_url: str, api: TestClient) -> None:
    from tests.support.databases import make_settings

    settings = make_settings(database_url, run_worker=False, webhook_allow_private=True)
    with TestClient(create_app(settings)) as private_api:
        headers = Accounts(database_url, private_api).headers([], sub="svc-hooks-private")
        response = private_api.post(
            "/api/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "types": ["task.completed"]},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        # The URL's shape is checked whatever the setting.
        refused = private_api.post(
            "/api/webhooks",
            json={"url": "file:///etc/passwd", "types": ["task.completed"]},
            headers=headers,
        )
        assert refused.status_code == 400
