"""Subscriptions and delivery attempts as the API shows them, the bodies it takes, and the
OpenAPI 3.1 `webhooks` section: what a receiver gets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from registrar.events.record import TYPES

EVENT_TYPES_SCHEMA = {"type": "string", "enum": list(TYPES)}

CREATE_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url", "types"],
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string",
            "maxLength": 2048,
            "description": "http or https; its host must resolve to public addresses only "
            "(unless REGISTRAR_WEBHOOK_ALLOW_PRIVATE=true)",
        },
        "types": {"type": "array", "minItems": 1, "uniqueItems": True, "items": EVENT_TYPES_SCHEMA},
    },
}
# A receiver on the demo's own machine (`make run` allows private targets).
CREATE_EXAMPLE = {"url": "http://127.0.0.1:9000/registrar-events", "types": ["enrollment.updated"]}

CHANGE_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **CREATE_BODY_SCHEMA["properties"],
        "status": {
            "type": "string",
            "enum": ["active"],
            "description": "Enable a disabled subscription again (its failures forgotten)",
        },
    },
}
CHANGE_EXAMPLE = {"status": "active"}


class WebhookOut(BaseModel):
    id: str = Field(description="24 lowercase hex characters")
    url: str
    types: list[str]
    created: str = Field(description="YYYY-MM-DDTHH:MM:SSZ")
    status: Literal["active", "disabled"] = Field(
        description="`disabled` once every attempt failed for "
        "REGISTRAR_WEBHOOK_DISABLE_AFTER_HOURS (72): nothing is sent until it is enabled again"
    )
    failing_since: str | None = Field(
        description="Since when every attempt has failed (null while the last one succeeded)"
    )
    disabled_at: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="`whsec_` + base64: the Standard Webhooks signing key. Shown only here, once."
    )


class DeliveryAttemptOut(BaseModel):
    id: str = Field(description="The delivery: the `webhook-id` header of each of its attempts")
    event: str = Field(description="The event's `id`")
    attempt: int = Field(description="1 for the first POST of this delivery, then 2, ...")
    time: str = Field(description="When the attempt started: YYYY-MM-DDTHH:MM:SSZ")
    status_code: int | None = Field(description="The receiver's HTTP status (null: no answer)")
    error: str | None = Field(
        description="Why there was no answer: refused target, timeout, connection failure"
    )
    duration_ms: float


class RetryAccepted(BaseModel):
    id: str
    event: str
    status: Literal["pending"]
    attempts: int = Field(description="Attempts made so far")


def webhooks_section(max_attempts: int, base: float, timeout: float) -> dict[str, Any]:
    """OpenAPI 3.1's `webhooks`: the request each subscription receives, one per event type (the
    body is the feed's CloudEvent schema, which GET /api/events puts in the document)."""
    signed = (
        "Signed per Standard Webhooks: verify `webhook-signature` (`v1,<base64 HMAC-SHA256 of "
        '"webhook-id.webhook-timestamp.body">`, keyed with the subscription\'s secret) with any '
        "Standard Webhooks library or `registrar_client.webhooks.verify`, and refuse a timestamp "
        "far from now. Answer 2xx within "
        f"{timeout:g} s to acknowledge; anything else (a timeout, a redirect, 4xx, 5xx) is "
        f"retried with exponential backoff from {base:g} s, up to {max_attempts} attempts, "
        "with the same `webhook-id` (deduplicate on it: delivery is at least once, and in no "
        "particular order)."
    )
    headers = [
        {
            "name": "webhook-id",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "The delivery's id: the same on every retry",
        },
        {
            "name": "webhook-timestamp",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "Unix seconds when this attempt was signed",
        },
        {
            "name": "webhook-signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "`v1,<base64 HMAC-SHA256>`",
        },
    ]
    section: dict[str, Any] = {}
    for event_type in TYPES:
        section[event_type] = {
            "post": {
                "summary": f"{event_type}: a change your account may see",
                "description": signed,
                "parameters": headers,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/CloudEvent"}}
                    },
                },
                "responses": {
                    "2XX": {"description": "Delivered"},
                    "default": {"description": "Not delivered: retried later"},
                },
            }
        }
    return section
