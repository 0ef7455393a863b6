"""registrar_client.webhooks.verify against the reference Standard Webhooks implementation
(the `standardwebhooks` package signs; our verify must accept exactly what it accepts)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time

import pytest
from registrar_client import Event, RegistrarError, WebhookVerificationError, webhooks
from standardwebhooks.webhooks import Webhook as Reference

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
EVENT = {
    "specversion": "1.0",
    "id": "ev_01",
    "source": "/api/academic/enrollments",
    "type": "enrollment.updated",
    "time": "2024-11-20T20:54:27.328833Z",
    "subject": "AAAS.010.01-202001-U-10188-f001nkx-student",
    "origin": "api",
    "data": {"id": "AAAS.010.01-202001-U-10188-f001nkx-student", "changed": ["final_grade"]},
}
BODY = json.dumps(EVENT, separators=(",", ":"))


def delivery(
    body: str = BODY, secret: str = SECRET, at: float | None = None, msg_id: str = "msg_1"
) -> dict[str, str]:
    """Headers as a registrar delivery carries them, signed by the reference implementation."""
    when = dt.datetime.fromtimestamp(time.time() if at is None else at, tz=dt.UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Reference(secret).sign(msg_id, when, body),
    }


def test_a_delivery_signed_by_the_reference_verifies() -> None:
    event = webhooks.verify(SECRET, delivery(), BODY.encode())
    assert isinstance(event, Event)
    assert event.type == "enrollment.updated"
    assert event.data.changed == ["final_grade"]
    # str bodies, and headers in any case (frameworks differ)
    headers = {k.title(): v for k, v in delivery().items()}
    assert webhooks.verify(SECRET, headers, BODY).id == "ev_01"


def test_our_signature_is_the_references() -> None:
    now = int(time.time())
    ours = webhooks.sign(SECRET, "msg_9", now, BODY)
    theirs = Reference(SECRET).sign("msg_9", dt.datetime.fromtimestamp(now, dt.UTC), BODY)
    assert ours == theirs
    headers = {"webhook-id": "msg_9", "webhook-timestamp": str(now), "webhook-signature": ours}
    assert Reference(SECRET).verify(BODY, headers) == EVENT


def test_any_one_matching_signature_among_several_is_enough() -> None:
    headers = delivery()
    other = "whsec_" + base64.b64encode(b"rotated-out-key-000000").decode()
    stale = Reference(other).sign("msg_1", dt.datetime.now(dt.UTC), BODY)
    headers["webhook-signature"] = f"v1a,abc {stale} {headers['webhook-signature']}"
    assert webhooks.verify(SECRET, headers, BODY).id == "ev_01"


@pytest.mark.parametrize(
    "forge",
    [
        "body",
        "id",
        "timestamp",
        "secret",
        "old",
        "future",
        "missing",
        "garbage",
        "version",
    ],
)
def test_forgeries_and_replays_are_refused(forge: str) -> None:
    headers = delivery()
    body = BODY
    secret = SECRET
    if forge == "body":
        body = BODY.replace("final_grade", "course_assessment")
    elif forge == "id":
        headers["webhook-id"] = "msg_2"
    elif forge == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    elif forge == "secret":
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    elif forge == "old":
        headers = delivery(at=time.time() - 301)
    elif forge == "future":
        headers = delivery(at=time.time() + 301)
    elif forge == "missing":
        del headers["webhook-signature"]
    elif forge == "garbage":
        headers["webhook-signature"] = "v1,@@@ nonsense"
    elif forge == "version":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(WebhookVerificationError) as caught:
        webhooks.verify(secret, headers, body)
    assert isinstance(caught.value, RegistrarError)
    # The reference refuses the same deliveries.
    with pytest.raises(Exception, match=r".+"):
        Reference(secret).verify(body, headers)


def test_tolerance_and_clock_can_be_given() -> None:
    headers = delivery(at=time.time() - 3600)
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(SECRET, headers, BODY)
    assert webhooks.verify(SECRET, headers, BODY, tolerance=7200).id == "ev_01"
    assert webhooks.verify(SECRET, headers, BODY, now=time.time() - 3600).id == "ev_01"


def test_secrets_without_padding_or_prefix_and_raw_bytes() -> None:
    raw = secrets.token_bytes(25)  # base64 with padding
    encoded = base64.b64encode(raw).decode()
    headers = delivery(secret="whsec_" + encoded)
    assert webhooks.verify("whsec_" + encoded.rstrip("="), headers, BODY).id == "ev_01"
    assert webhooks.verify(encoded, headers, BODY).id == "ev_01"
    assert webhooks.verify(raw, headers, BODY).id == "ev_01"
    with pytest.raises(WebhookVerificationError, match="secret"):
        webhooks.verify("whsec_!!!", headers, BODY)


def test_a_signed_body_that_is_not_an_event_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        webhooks.verify(SECRET, delivery(body="not json"), "not json")
    with pytest.raises(WebhookVerificationError, match="not an event"):
        webhooks.verify(SECRET, delivery(body="[1]"), "[1]")
