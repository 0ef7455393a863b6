"""Subscriptions, the deliveries made for them (one per subscription and event) and the log of
each delivery's attempts."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from registrar.db.base import Base, UTCDateTime


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    # Failing for REGISTRAR_WEBHOOK_DISABLE_AFTER_HOURS: nothing more is sent until it is enabled.
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # its task is queued (first try or a retry)
    DELIVERED = "delivered"  # a 2xx answered
    FAILED = "failed"  # out of attempts, or the subscription was disabled or deleted
    # The account may no longer see the event (a grant revoked since it happened): not sent.
    SKIPPED = "skipped"


class Webhook(Base):
    """A subscription: where a service account wants the events of some types POSTed."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    sub: Mapped[str] = mapped_column(String(255), nullable=False, index=True)  # the owner
    url: Mapped[str] = mapped_column(Text, nullable=False)
    types: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    # The Standard Webhooks signing key (`whsec_` + base64 of 32 random bytes), which signs every
    # delivery: whoever reads it can forge events to the receiver.
    # Stored sealed (webhooks/sealing.py: `sealed1:` + base64url, ~104 characters), never as the
    # plain secret. TEXT on PostgreSQL (migration 0013); SQLite keeps the VARCHAR(64) of 0012,
    # whose length it does not enforce (rebuilding the table to change it would cascade-delete
    # the deliveries that reference it).
    secret: Mapped[str] = mapped_column(
        String(64).with_variant(Text(), "postgresql"), nullable=False
    )
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    # Since when every attempt has failed (null while the last one succeeded).
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The last event position fanned out to deliveries (events after it are still to look at).
    cursor: Mapped[int] = mapped_column(BigInteger, nullable=False)


class WebhookDelivery(Base):
    """One event for one subscription; its id is the delivery task's id and the `webhook-id`
    header of every attempt (receivers deduplicate on it)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)  # the CloudEvent id
    event_type: Mapped[str] = mapped_column(String(32), nullable=False)
    # The CloudEvent as the account could see it when it was fanned out, and the scopes of the
    # account's that shaped it (delivery.py: `shaping_scopes`): an attempt sends it as is while
    # the account still holds them all, and skips it once one of them is revoked.
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    scopes: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (
        # Exactly one delivery per (subscription, event), whatever happens to a fan-out.
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_created", "created"),
    )


class WebhookAttempt(Base):
    """One POST of a delivery: the delivery log (GET /api/webhooks/{id}/deliveries)."""

    __tablename__ = "webhook_attempts"

    # Insertion order: the log's order (newest first) and its paging key.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))
    duration_ms: Mapped[float] = mapped_column(Float, nullable=False)

    __table_args__ = (Index("ix_webhook_attempts_webhook_id_seq", "webhook_id", "seq"),)
