"""Service accounts, the login service's signing keys, shared secrets and the per-account
rate-limit counters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registrar.core.clock import utcnow
from registrar.db.base import Base, UTCDateTime


class ServiceAccount(Base):
    __tablename__ = "service_accounts"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sub: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    email: Mapped[str] = mapped_column(String(255), nullable=False)
    # Space-separated granted scopes.
    scopes: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # Only the hash of the API key is kept; the prefix lets an operator tell keys apart.
    key_prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16), nullable=False)
    # PEM, or "enc:" + Fernet token when REGISTRAR_KEY_ENCRYPTION_SECRET is set. Never served.
    private_key: Mapped[str] = mapped_column(Text, nullable=False)
    public_key: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # Set when a newer key took over signing; kept for verification until its tokens expire.
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class InstanceSecret(Base):
    """Secrets every process shares (e.g. the key that signs continuation keys)."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class RateLimitCounter(Base):
    """One row per (account, minute): the shared counter on PostgreSQL."""

    __tablename__ = "rate_limits"

    sub: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Start of the window in epoch minutes; "window" itself is an SQL keyword.
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
