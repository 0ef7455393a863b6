"""Subscriptions as a service account manages them: create (the secret shown once), list, read,
change, delete, and their delivery log and retries. An account sees and changes its own
subscriptions only: another's is a 404, as an unknown id."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from typing import Any

import orjson
from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from registrar.auth.client import Client
from registrar.auth.service import shared_secret
from registrar.core.clock import iso_z, iso_z_micro, utcnow
from registrar.core.problems import ProblemError, bad_request, not_found
from registrar.core.runtime import Runtime
from registrar.db.database import Database
from registrar.events.record import TYPES
from registrar.tasks import repository as tasks_repo
from registrar.tasks.idempotency import IdempotencyClaim
from registrar.tasks.models import TaskStatus
from registrar.webhooks import repository
from registrar.webhooks.delivery import delivery_task
from registrar.webhooks.models import DeliveryStatus, SubscriptionStatus
from registrar.webhooks.sealing import SECRET_NAME, SecretBox
from registrar.webhooks.targets import TargetRefused, resolve, url_problems

ID = re.compile(r"[0-9a-f]{24}")
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
CREATE_KEYS = ("url", "types")
CHANGE_KEYS = ("url", "types", "status")


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _is_id(text: str) -> bool:
    return ID.fullmatch(text) is not None


def types_problems(types: object) -> list[str]:
    if not isinstance(types, list) or not types:
        return [f"types: a non-empty array of event types ({', '.join(TYPES)})"]
    problems = []
    for t in types:
        if not isinstance(t, str) or t not in TYPES:
            shown = repr(t)[:64] if isinstance(t, str) else type(t).__name__
            problems.append(f"types: {shown} is not one of {', '.join(TYPES)}")
    if not problems and len(set(types)) != len(types):
        problems.append("types: each type once")
    return problems


def body_problems(
    body: object, *, allowed: tuple[str, ...], required: tuple[str, ...]
) -> list[str]:
    """Every problem of a create (`url`, `types`) or change (any of them, and `status`) body."""
    if not isinstance(body, dict):
        return ["The payload must be a JSON object."]
    problems = [f"Unknown attribute: {str(k)[:64]}." for k in body if k not in allowed]
    problems += [f"Missing attribute: {k}." for k in required if k not in body]
    if "url" in body:
        problems += url_problems(body["url"])
    if "types" in body:
        problems += types_problems(body["types"])
    if "status" in body and body["status"] != SubscriptionStatus.ACTIVE:
        problems.append('status: only "active" (enable a disabled subscription again)')
    return problems


async def check_target(runtime: Runtime, url: str) -> None:
    """400 unless the URL's host resolves to addresses a webhook may go to (targets.py)."""
    try:
        await resolve(url, allow_private=runtime.settings.webhook_allow_private)
    except TargetRefused as exc:
        raise bad_request("The webhook URL is refused.", [str(exc)]) from None


def represent(row: Row[Any], *, secret: str | None = None) -> dict[str, Any]:
    """A subscription as its owner sees it; `secret` (the plain one, opened) only on create."""
    out = {
        "id": row.id,
        "url": row.url,
        "types": list(row.types),
        "created": iso_z(row.created),
        "status": row.status,
        "failing_since": iso_z(row.failing_since),
        "disabled_at": iso_z(row.disabled_at),
    }
    if secret is not None:
        out["secret"] = secret
    return out


async def secret_box(runtime: Runtime) -> SecretBox:
    """The box that opens stored subscription secrets (sealing.py), its key read once per
    process (made by the first subscription's insert if need be)."""
    if runtime.webhook_secret is None:
        runtime.webhook_secret = await shared_secret(runtime.db, SECRET_NAME)
    return SecretBox(runtime.webhook_secret)


def _create(
    connection: Connection, row: dict[str, Any], idempotency: IdempotencyClaim | None
) -> str:
    """Store the subscription unless the Idempotency-Key names an earlier one: its id."""
    if idempotency is not None:
        replay = tasks_repo.find_replay(connection, idempotency)
        if replay is not None:
            return replay  # (a 404 if that subscription was deleted since)
    repository.insert_webhook(connection, row)
    if idempotency is not None:
        tasks_repo.remember(connection, idempotency, row["id"])
    return str(row["id"])


async def create(
    runtime: Runtime, client: Client, body: dict[str, Any], idempotency: IdempotencyClaim | None
) -> dict[str, Any]:
    problems = body_problems(body, allowed=CREATE_KEYS, required=CREATE_KEYS)
    if problems:
        raise bad_request("The payload is not valid.", problems)
    await check_target(runtime, body["url"])
    row = {
        "id": secrets.token_hex(12),
        "sub": client.sub,
        "url": body["url"],
        "types": body["types"],
        "secret": new_secret(),
        "created": utcnow(),
        "status": SubscriptionStatus.ACTIVE.value,
    }
    for attempt in range(3):
        try:
            webhook_id = await runtime.db.write(_create, row, idempotency)
            break
        except IntegrityError:
            # PostgreSQL: a concurrent request with the same new key won; run once more to find it.
            if idempotency is None or attempt == 2:
                raise
    found = await runtime.db.read(repository.get_webhook, webhook_id, client.sub)
    if found is None:
        raise not_found("webhook")
    # Opened from what was stored: an Idempotency-Key replay shows the first request's secret.
    box = await secret_box(runtime)
    return represent(found, secret=box.open(found.id, found.secret))


async def _own(db: Database, webhook_id: str, client: Client) -> Row[Any]:
    row = (
        await db.read(repository.get_webhook, webhook_id, client.sub)
        if _is_id(webhook_id)
        else None
    )
    if row is None:
        raise not_found("webhook")
    return row


async def list_webhooks(db: Database, client: Client) -> list[dict[str, Any]]:
    return [represent(r) for r in await db.read(repository.list_webhooks, client.sub)]


async def get_webhook(db: Database, webhook_id: str, client: Client) -> dict[str, Any]:
    return represent(await _own(db, webhook_id, client))


async def change(runtime: Runtime, webhook_id: str, client: Client, body: Any) -> dict[str, Any]:
    await _own(runtime.db, webhook_id, client)
    problems = body_problems(body, allowed=CHANGE_KEYS, required=())
    if problems:
        raise bad_request("The payload is not valid.", problems)
    if "url" in body:
        await check_target(runtime, body["url"])
    row = await runtime.db.write(repository.change_webhook, webhook_id, client.sub, dict(body))
    if row is None:
        raise not_found("webhook")
    return represent(row)


async def delete(db: Database, webhook_id: str, client: Client) -> None:
    if not _is_id(webhook_id) or not await db.write(
        repository.delete_webhook, webhook_id, client.sub
    ):
        raise not_found("webhook")


def represent_attempt(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.delivery_id,
        "event": row.event_id,
        "attempt": row.attempt,
        "time": iso_z(row.time),
        "status_code": row.status_code,
        "error": row.error,
        "duration_ms": round(float(row.duration_ms), 1),
    }


async def deliveries(
    db: Database, webhook_id: str, client: Client, *, limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """The subscription's attempts, newest first, and the key of the next page (None: no more)."""
    await _own(db, webhook_id, client)
    rows = await db.read(repository.attempts_of, webhook_id, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return [represent_attempt(r) for r in rows], (int(rows[-1].seq) if more else None)


def _retry(
    connection: Connection, webhook_id: str, delivery_id: str, sub: str, max_attempts: int
) -> Row[Any] | None:
    """Queue the delivery's task again, to run now: a finished task goes back to `accepted` with
    a fresh set of attempts, a pending one runs now instead of after its backoff, and one the
    queue has pruned is queued anew."""
    delivery = repository.get_delivery(connection, webhook_id, delivery_id)
    if delivery is None:
        return None
    why_not = tasks_repo.requeue_failed(
        connection, delivery_id, statuses=(TaskStatus.ERROR, TaskStatus.COMPLETE)
    )
    if why_not == "no such task":
        hook = repository.get_webhook(connection, webhook_id, sub)
        assert hook is not None
        tasks_repo.insert_tasks(
            connection, [delivery_task(delivery_id, hook, utcnow(), max_attempts)], announce=False
        )
    elif why_not is not None:
        tasks_repo.run_now(connection, delivery_id)
    repository.set_delivery_status(
        connection,
        [
            {
                "delivery": delivery_id,
                "new_status": DeliveryStatus.PENDING,
                "new_attempts": delivery.attempts,
            }
        ],
    )
    return repository.get_delivery(connection, webhook_id, delivery_id)


async def retry(
    runtime: Runtime, webhook_id: str, delivery_id: str, client: Client
) -> dict[str, Any]:
    hook = await _own(runtime.db, webhook_id, client)
    if hook.status != SubscriptionStatus.ACTIVE:
        raise ProblemError(
            409,
            "The subscription is disabled: enable it again first "
            '(PATCH it with {"status": "active"}).',
            slug="webhook-disabled",
        )
    row = None
    if _is_id(delivery_id):
        row = await runtime.db.write(
            _retry, webhook_id, delivery_id, client.sub, runtime.settings.webhook_max_attempts
        )
    if row is None:
        raise not_found("delivery")
    return {"id": row.id, "event": row.event_id, "status": row.status, "attempts": row.attempts}


# `registrar demo`'s samples, owned by the demo account: the OpenAPI document's and the README's
# examples use them. The receiver URL is on the demo's own machine, where nothing listens unless
# you start something there (`make run` allows private targets; a deployment does not).
SAMPLE_WEBHOOK = "5e0b7c1d2a3f4e5d6c7b8a90"
SAMPLE_DELETABLE = "5e0b7c1d2a3f4e5d6c7b8a91"
SAMPLE_DELIVERY = "5e0b7c1d2a3f4e5d6c7b8a92"
SAMPLE_URL = "http://127.0.0.1:9000/registrar-events"
SAMPLE_TYPES = ["enrollment.updated", "task.completed"]


def put_samples(connection: Connection, sub: str, task_id: str, now: dt.datetime) -> None:
    """The samples, anew: two subscriptions (one for the DELETE example) and one delivery of
    `task_id`'s task.completed, whose first attempt found nothing listening."""
    hooks = [
        {
            "id": hook_id,
            "sub": sub,
            "url": SAMPLE_URL,
            "types": SAMPLE_TYPES,
            "secret": new_secret(),
            "created": now,
            "status": SubscriptionStatus.ACTIVE.value,
        }
        for hook_id in (SAMPLE_WEBHOOK, SAMPLE_DELETABLE)
    ]
    event = {
        "specversion": "1.0",
        "id": "00000000000000000000000000000001",
        "source": "/api/tasks",
        "type": "task.completed",
        "time": iso_z_micro(now),
        "subject": task_id,
        "origin": "api",
        "data": {"id": task_id},
    }
    delivery = {
        "id": SAMPLE_DELIVERY,
        "webhook_id": SAMPLE_WEBHOOK,
        "event_id": event["id"],
        "event_type": event["type"],
        "body": orjson.dumps(event),
        "scopes": "",
        "status": DeliveryStatus.FAILED.value,
        "attempts": 1,
        "created": now,
    }
    attempt = {
        "webhook_id": SAMPLE_WEBHOOK,
        "delivery_id": SAMPLE_DELIVERY,
        "attempt": 1,
        "time": now,
        "status_code": None,
        "error": "could not connect",
        "duration_ms": 0.4,
    }
    repository.put_samples(connection, hooks, delivery, attempt)
