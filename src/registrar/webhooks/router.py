"""Webhook subscriptions over HTTP (spec section 7): any valid token manages its own account's."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from registrar.core.problems import bad_request
from registrar.http.bodies import read_json_body
from registrar.http.dependencies import CurrentClient, RuntimeDep
from registrar.http.openapi import path_example
from registrar.http.problems import problem_responses
from registrar.http.responses import FastJSON
from registrar.http.urls import public_url
from registrar.tasks.idempotency import HEADER, IDEMPOTENCY_KEY_PARAMETER, idempotency_claim
from registrar.webhooks import service
from registrar.webhooks.schemas import (
    CHANGE_BODY_SCHEMA,
    CHANGE_EXAMPLE,
    CREATE_BODY_SCHEMA,
    CREATE_EXAMPLE,
    DeliveryAttemptOut,
    RetryAccepted,
    WebhookCreated,
    WebhookOut,
)

router = APIRouter(tags=["webhooks"])

OWN = (
    "Any valid token; an account sees and changes its own subscriptions only (another's is a "
    "404, as an unknown id)."
)
WEBHOOK_ID = path_example("webhook_id", service.SAMPLE_WEBHOOK, "24 lowercase hex characters")
# The DELETE example deletes a sample of its own (the others stay for the other examples).
DELETABLE_ID = path_example("webhook_id", service.SAMPLE_DELETABLE, "24 lowercase hex characters")
BODY_PROBLEMS = (400, 408, 413, 415)


@router.post(
    "/api/webhooks",
    summary="Subscribe to events",
    description=OWN
    + " Each event of `types` the account may see (its grants when the event is sent) is POSTed "
    "to `url` as a CloudEvent, signed per Standard Webhooks with `secret`, which this answer "
    "alone shows. The URL's host is resolved now and must be public (400 otherwise). "
    "`Idempotency-Key` makes the request safe to repeat (the same 201 within 24 h).",
    status_code=201,
    response_model=WebhookCreated,
    responses=problem_responses(*BODY_PROBLEMS, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": CREATE_BODY_SCHEMA, "example": CREATE_EXAMPLE}
            },
        },
        "parameters": [IDEMPOTENCY_KEY_PARAMETER],
    },
)
async def create_webhook(request: Request, client: CurrentClient, runtime: RuntimeDep) -> Any:
    body = await read_json_body(request)
    claim = idempotency_claim(
        request.headers.get(HEADER),
        sub=client.sub,
        method=request.method,
        path=request.url.path,
        body=body,
    )
    created = await service.create(runtime, client, body, claim)
    return FastJSON(
        created, status_code=201, headers={"Location": f"/api/webhooks/{created['id']}"}
    )


@router.get(
    "/api/webhooks",
    summary="List your subscriptions",
    description=OWN + " Oldest first; secrets are never shown again.",
    response_model=list[WebhookOut],
)
async def list_webhooks(client: CurrentClient, runtime: RuntimeDep) -> Any:
    return FastJSON(await service.list_webhooks(runtime.db, client))


@router.get(
    "/api/webhooks/{webhook_id}",
    summary="Get one subscription",
    description=OWN,
    response_model=WebhookOut,
    responses=problem_responses(404),
    openapi_extra={"parameters": [WEBHOOK_ID]},
)
async def get_webhook(webhook_id: str, client: CurrentClient, runtime: RuntimeDep) -> Any:
    return FastJSON(await service.get_webhook(runtime.db, webhook_id, client))


@router.patch(
    "/api/webhooks/{webhook_id}",
    summary="Change a subscription (url, types), or enable it again",
    description=OWN
    + ' `{"status": "active"}` enables a disabled subscription (its failures forgotten; '
    "deliveries that ended while it was disabled can be retried). A new `url` is checked as at "
    "creation.",
    response_model=WebhookOut,
    responses=problem_responses(404, *BODY_PROBLEMS),
    openapi_extra={
        "parameters": [WEBHOOK_ID],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": CHANGE_BODY_SCHEMA, "example": CHANGE_EXAMPLE}
            },
        },
    },
)
async def change_webhook(
    webhook_id: str, request: Request, client: CurrentClient, runtime: RuntimeDep
) -> Any:
    await service.get_webhook(runtime.db, webhook_id, client)  # 404 before 415/400
    body = await read_json_body(request)
    return FastJSON(await service.change(runtime, webhook_id, client, body))


@router.delete(
    "/api/webhooks/{webhook_id}",
    summary="Delete a subscription",
    description=OWN + " Its delivery log goes with it; nothing more is sent.",
    status_code=204,
    response_class=Response,
    responses=problem_responses(404),
    openapi_extra={"parameters": [DELETABLE_ID]},
)
async def delete_webhook(webhook_id: str, client: CurrentClient, runtime: RuntimeDep) -> Response:
    await service.delete(runtime.db, webhook_id, client)
    return Response(status_code=204)


@router.get(
    "/api/webhooks/{webhook_id}/deliveries",
    summary="The delivery log: one row per attempt, newest first",
    description=OWN
    + " Each attempt: the delivery's id (its `webhook-id`), the event's id, the attempt number, "
    "when, the receiver's status code or the error, and how long it took. Paged by "
    '`pagesize`; `Link: rel="next"` names the next page.',
    response_model=list[DeliveryAttemptOut],
    responses={
        200: {"headers": {"Link": {"description": 'rel="next"', "schema": {"type": "string"}}}},
        **problem_responses(400, 404),
    },
    openapi_extra={"parameters": [WEBHOOK_ID]},
)
async def list_deliveries(
    webhook_id: str,
    request: Request,
    client: CurrentClient,
    runtime: RuntimeDep,
    pagesize: Annotated[int | None, Query(ge=1, le=1000)] = None,
    before: Annotated[int | None, Query(ge=1, description="Set by the next link")] = None,
) -> Any:
    limit = pagesize or runtime.settings.page_size_default
    if limit > runtime.settings.page_size_max:
        raise bad_request(
            "pagesize is too large.", [f"pagesize: at most {runtime.settings.page_size_max}"]
        )
    rows, next_key = await service.deliveries(
        runtime.db, webhook_id, client, limit=limit, before=before
    )
    headers = {}
    if next_key is not None:
        query = urlencode({"pagesize": limit, "before": next_key})
        headers["Link"] = f'<{public_url(request).replace(query=query)}>; rel="next"'
    return FastJSON(rows, headers=headers)


@router.post(
    "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    summary="Send a delivery again now",
    description=OWN
    + " The delivery (its id from the log) is queued to be sent now, with the same `webhook-id` "
    "and a fresh set of attempts, whether it failed, was delivered or is waiting for a retry. "
    "Answers the delivery as queued (its attempts go to the log). 409 while the subscription is "
    "disabled.",
    status_code=200,
    response_model=RetryAccepted,
    responses=problem_responses(404, 409),
    openapi_extra={
        "parameters": [
            WEBHOOK_ID,
            path_example(
                "delivery_id", service.SAMPLE_DELIVERY, "the delivery's id (the log's `id`)"
            ),
        ]
    },
)
async def retry_delivery(
    webhook_id: str, delivery_id: str, client: CurrentClient, runtime: RuntimeDep
) -> Any:
    return FastJSON(await service.retry(runtime, webhook_id, delivery_id, client), status_code=200)
