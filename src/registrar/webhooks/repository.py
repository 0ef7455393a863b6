"""Every statement on subscriptions, deliveries and their attempts (plain code over a Connection,
for `Database.read` and `write`). The delivery tasks themselves live on the task queue and are
changed only through tasks/repository.py."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)

from registrar.auth import repository as auth_repo
from registrar.core.clock import utcnow
from registrar.events import repository as events_repo
from registrar.events.models import Event
from registrar.webhooks.models import (
    DeliveryStatus,
    SubscriptionStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from registrar.webhooks.sealing import SECRET_NAME, SecretBox

HOOKS = cast(Table, Webhook.__table__)
H = HOOKS.c
DELIVERIES = cast(Table, WebhookDelivery.__table__)
D = DELIVERIES.c
ATTEMPTS = cast(Table, WebhookAttempt.__table__)
A = ATTEMPTS.c
EVENTS = cast(Table, Event.__table__)


# --- subscriptions --------------------------------------------------------------------------


def secret_box(connection: Connection) -> SecretBox:
    """The box that seals subscription secrets (webhooks/sealing.py), its instance secret made on
    first use. On a write connection (it may insert the secret)."""
    value = auth_repo.instance_secret(connection, SECRET_NAME)
    if value is None:
        auth_repo.add_instance_secret(connection, SECRET_NAME, secrets.token_hex(32), utcnow())
        value = auth_repo.instance_secret(connection, SECRET_NAME)
    assert value is not None
    return SecretBox(bytes.fromhex(value))


def _sealed(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with their `secret` (the plain whsec_ value) sealed for storage."""
    box = secret_box(connection)
    return [{**row, "secret": box.seal(row["id"], row["secret"])} for row in rows]


def insert_webhook(connection: Connection, row: dict[str, Any]) -> None:
    """A new subscription, starting after the newest event committed now; `row["secret"]` is the
    plain secret, stored sealed."""
    (sealed,) = _sealed(connection, [row])
    connection.execute(
        insert(HOOKS).values(**sealed, cursor=events_repo.newest_position(connection))
    )


def get_webhook(connection: Connection, webhook_id: str, sub: str) -> Row[Any] | None:
    return connection.execute(select(HOOKS).where(H.id == webhook_id, H.sub == sub)).first()


def list_webhooks(connection: Connection, sub: str) -> list[Row[Any]]:
    return list(connection.execute(select(HOOKS).where(H.sub == sub).order_by(H.created, H.id)))


def delete_webhook(connection: Connection, webhook_id: str, sub: str) -> bool:
    """The subscription and its log (cascade); its queued tasks find it gone and end."""
    result = connection.execute(delete(HOOKS).where(H.id == webhook_id, H.sub == sub))
    return int(getattr(result, "rowcount", 0) or 0) == 1


def change_webhook(
    connection: Connection, webhook_id: str, sub: str, values: dict[str, Any]
) -> Row[Any] | None:
    """Change a subscription's url, types or status; enabling it again forgets its failures."""
    if values.get("status") == SubscriptionStatus.ACTIVE:
        values = {**values, "failing_since": None, "disabled_at": None}
    if values:
        connection.execute(update(HOOKS).where(H.id == webhook_id, H.sub == sub).values(**values))
    return get_webhook(connection, webhook_id, sub)


# --- fan-out --------------------------------------------------------------------------------


def subscriptions_state(connection: Connection) -> tuple[bool, bool]:
    """(any active subscription, any active one behind the newest event), in one read."""
    head = select(func.max(EVENTS.c.position)).scalar_subquery()
    active, lagging = connection.execute(
        select(func.count(H.id), func.max(case((H.cursor < head, 1), else_=0))).where(
            H.status == SubscriptionStatus.ACTIVE
        )
    ).one()
    return bool(active), bool(lagging)


def lock_lagging(connection: Connection, head: int, limit: int) -> list[Row[Any]]:
    """Active subscriptions behind `head`, locked for this transaction's fan-out. PostgreSQL:
    FOR UPDATE SKIP LOCKED, so two workers' fan-outs take different subscriptions and a
    subscription's cursor moves in one transaction at a time (SQLite: the write lock)."""
    stmt = (
        select(H.id, H.sub, H.url, H.types, H.cursor)
        .where(H.status == SubscriptionStatus.ACTIVE, H.cursor < head)
        .order_by(H.cursor)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(connection.execute(stmt))


def insert_deliveries(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(DELIVERIES), rows)


_MOVE_CURSOR = update(HOOKS).where(H.id == bindparam("hook")).values(cursor=bindparam("new_cursor"))


def move_cursors(connection: Connection, cursors: dict[str, int]) -> None:
    if cursors:
        connection.execute(_MOVE_CURSOR, [{"hook": k, "new_cursor": v} for k, v in cursors.items()])


# --- delivering -----------------------------------------------------------------------------


def deliveries_to_send(connection: Connection, ids: Sequence[str]) -> list[Row[Any]]:
    """The claimed deliveries with their subscription (url, secret, owner, status); a delivery
    whose subscription was deleted is absent."""
    if not ids:
        return []
    stmt = (
        select(
            D.id,
            D.webhook_id,
            D.event_type,
            D.body,
            D.scopes,
            D.attempts,
            H.sub,
            H.url,
            H.secret,
            H.status.label("webhook_status"),
        )
        .join(HOOKS, H.id == D.webhook_id)
        .where(D.id.in_(list(ids)))
    )
    return list(connection.execute(stmt))


def replace_body(connection: Connection, delivery_id: str, body: bytes, scopes: str) -> None:
    connection.execute(
        update(DELIVERIES).where(D.id == delivery_id).values(body=body, scopes=scopes)
    )


def insert_attempts(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(ATTEMPTS), rows)


_DELIVERY_STATUS = (
    update(DELIVERIES)
    .where(D.id == bindparam("delivery"))
    .values(status=bindparam("new_status"), attempts=bindparam("new_attempts"))
)


def set_delivery_status(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """rows: {delivery, new_status, new_attempts}, one statement for all."""
    if rows:
        connection.execute(_DELIVERY_STATUS, rows)


def mark_succeeding(connection: Connection, webhook_ids: Iterable[str]) -> None:
    ids = sorted(set(webhook_ids))
    if ids:
        connection.execute(
            update(HOOKS)
            .where(H.id.in_(ids), H.failing_since.is_not(None))
            .values(failing_since=None)
        )


def mark_failing(
    connection: Connection,
    webhook_ids: Iterable[str],
    *,
    now: dt.datetime,
    disable_before: dt.datetime,
) -> list[str]:
    """Note the failure of these subscriptions (failing since now, unless already), and disable
    those failing since before `disable_before`: the ids disabled now."""
    ids = sorted(set(webhook_ids))
    if not ids:
        return []
    connection.execute(
        update(HOOKS).where(H.id.in_(ids), H.failing_since.is_(None)).values(failing_since=now)
    )
    disabled = [
        str(i)
        for i in connection.scalars(
            select(H.id).where(
                H.id.in_(ids),
                H.status == SubscriptionStatus.ACTIVE,
                H.failing_since <= disable_before,
            )
        )
    ]
    if disabled:
        connection.execute(
            update(HOOKS)
            .where(H.id.in_(disabled))
            .values(status=SubscriptionStatus.DISABLED, disabled_at=now)
        )
    return disabled


# --- the log and retries --------------------------------------------------------------------


def attempts_of(
    connection: Connection, webhook_id: str, *, before: int | None, limit: int
) -> list[Row[Any]]:
    """The subscription's attempts, newest first, `limit` of them below the `before` key."""
    stmt = (
        select(
            A.seq,
            A.delivery_id,
            D.event_id,
            A.attempt,
            A.time,
            A.status_code,
            A.error,
            A.duration_ms,
        )
        .join(DELIVERIES, D.id == A.delivery_id)
        .where(A.webhook_id == webhook_id)
        .order_by(A.seq.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(A.seq < before)
    return list(connection.execute(stmt))


def get_delivery(connection: Connection, webhook_id: str, delivery_id: str) -> Row[Any] | None:
    return connection.execute(
        select(D.id, D.event_id, D.status, D.attempts).where(
            D.id == delivery_id, D.webhook_id == webhook_id
        )
    ).first()


def prune(connection: Connection, before: dt.datetime) -> int:
    """Forget attempts and finished deliveries older than `before` (the tasks' retention)."""
    connection.execute(delete(ATTEMPTS).where(A.time < before))
    result = connection.execute(
        delete(DELIVERIES).where(D.created < before, D.status != DeliveryStatus.PENDING)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def put_samples(
    connection: Connection,
    hooks: list[dict[str, Any]],
    delivery: dict[str, Any],
    attempt: dict[str, Any],
) -> None:
    """`registrar demo`'s sample subscriptions, made anew (their logs with them): one delivery
    and its failed attempt, for the examples of the log and the retry."""
    connection.execute(delete(HOOKS).where(H.id.in_([h["id"] for h in hooks])))
    cursor = events_repo.newest_position(connection)
    connection.execute(insert(HOOKS), [{**h, "cursor": cursor} for h in _sealed(connection, hooks)])
    connection.execute(insert(DELIVERIES).values(**delivery))
    connection.execute(insert(ATTEMPTS).values(**attempt))
