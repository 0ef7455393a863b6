"""Check that a webhook delivery came from registrar (Standard Webhooks, spec section 7).

    from registrar_client import webhooks

    event = webhooks.verify(secret, request.headers, request.body)   # raises if forged

Each delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
(space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the secret shown
when the subscription was created: `whsec_` + base64). Written here with `hmac` so the client
needs no other dependency; the test suite checks it against the reference `standardwebhooks`
package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping

from .errors import WebhookVerificationError
from .models import Event

__all__ = ["DEFAULT_TOLERANCE", "WebhookVerificationError", "sign", "verify"]

DEFAULT_TOLERANCE = 5 * 60  # seconds either side of now, as the Standard Webhooks libraries
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    text = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        # Padding is optional, as in the reference libraries.
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise WebhookVerificationError(
            "The webhook secret is not `whsec_` followed by base64.", title="Bad secret"
        )
    return key


def _content(msg_id: str, timestamp: int | str, body: bytes | str) -> bytes:
    payload = body if isinstance(body, bytes) else body.encode()
    return f"{msg_id}.{timestamp}.".encode() + payload


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` value for a delivery (useful to test a receiver)."""
    digest = hmac.new(_key(secret), _content(msg_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Event:
    """Check a delivery and return its event; raise `WebhookVerificationError` if it is not
    genuine: a header missing, a timestamp more than `tolerance` seconds from now (a replay), or
    no signature that matches. `body` must be the request's raw bytes, unparsed."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError(
            "The delivery lacks a webhook-id, webhook-timestamp or webhook-signature header.",
            title="Missing headers",
        )
    try:
        sent = math.floor(float(timestamp))
    except (ValueError, OverflowError):
        raise WebhookVerificationError(
            "webhook-timestamp is not a number of seconds.", title="Bad timestamp"
        ) from None
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {current - sent:+.0f} s from now (tolerance {tolerance:g} s).",
            title="Bad timestamp",
        )
    key = _key(secret)
    expected = hmac.new(key, _content(msg_id, sent, body), hashlib.sha256).digest()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(_b64(value), expected):
            break
    else:
        raise WebhookVerificationError(
            "No webhook-signature matches the body.", title="Bad signature"
        )
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookVerificationError(
            "The delivery's body is not JSON.", title="Bad body"
        ) from None
    if not isinstance(data, dict):
        raise WebhookVerificationError("The delivery's body is not an event.", title="Bad body")
    return Event(data)
