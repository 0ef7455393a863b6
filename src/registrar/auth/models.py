"""Service accounts, the login service's signing keys, shared secrets, the per-account rate-limit
counters and the per-address failed-login counters."""

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
    # Only the hash of the API key is kept. `key_prefix` is the key's public id, `rk_<8 chars>`
    # (keys are `rk_<id>_<secret>`), shown by `clients list` by design: it holds no secret bit.
    # Keys made before 0006 had no id: their prefix is empty.
    key_prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Tokens issued (`iat`) before this epoch second are refused: set when the account is revoked,
    # kept when it is given a new key, so a reinstated account's old tokens stay dead.
    tokens_not_before: Mapped[int | None] = mapped_column(BigInteger)
    # Every change to an account takes the next revision (writers serialize on the table, see
    # auth/repository.py): a process's view of the accounts asks only for what changed since the
    # highest revision it has seen, one index probe every REGISTRAR_ACCOUNT_REFRESH_SECONDS.
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)


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


class LoginFailureCounter(Base):
    """One row per (client address, minute): failed logins, shared on PostgreSQL."""

    __tablename__ = "login_failures"

    address: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class RateLimitCounter(Base):
    """One row per (account, minute): the shared counter on PostgreSQL."""

    __tablename__ = "rate_limits"

    sub: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Start of the window in epoch minutes; "window" itself is an SQL keyword.
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
