"""Signing keys for the login service: Ed25519, kept in the database so every process shares them.

Each process holds a small keyring in memory and reloads it from the database when it meets a `kid`
it does not know (another process rotated) or when its copy is older than a minute.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registrar.auth import repository
from registrar.auth.client import Client
from registrar.core.clock import utcnow
from registrar.db.database import Database

ALGORITHM = "EdDSA"
REFRESH_SECONDS = 60.0
UNKNOWN_KID_REFRESH_SECONDS = 5.0


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def seal_private_key(pem: str, secret: str | None) -> str:
    if not secret:
        return pem
    return "enc:" + _fernet(secret).encrypt(pem.encode()).decode()


def open_private_key(stored: str, secret: str | None) -> str:
    if not stored.startswith("enc:"):
        return stored
    if not secret:
        raise RuntimeError("signing keys are encrypted: set REGISTRAR_KEY_ENCRYPTION_SECRET")
    try:
        return _fernet(secret).decrypt(stored[4:].encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError(
            "REGISTRAR_KEY_ENCRYPTION_SECRET does not open the signing keys"
        ) from exc


def generate_key(secret: str | None) -> dict[str, Any]:
    """A new Ed25519 key pair, as a `signing_keys` row (the private half sealed by `secret`)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return {
        "kid": secrets.token_hex(8),
        "algorithm": ALGORITHM,
        "private_key": seal_private_key(pem, secret),
        "public_key": public_pem,
        "created_at": utcnow(),
    }


def public_jwk(kid: str, public_pem: str) -> dict[str, Any]:
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


@dataclass
class _Loaded:
    signing_kid: str
    signing_key: Ed25519PrivateKey
    public: dict[str, Ed25519PublicKey]
    jwks: list[dict[str, Any]]
    loaded_at: float


class KeyRing:
    def __init__(self, db: Database, *, secret: str | None, token_lifetime: int) -> None:
        self._db = db
        self._secret = secret
        self._lifetime = token_lifetime
        self._loaded: _Loaded | None = None
        self._lock = asyncio.Lock()
        self._last_unknown_refresh = 0.0
        # token -> (verified client, exp): see tokens.verify_token.
        self.verified: dict[str, tuple[Client, float]] = {}

    async def _load(self) -> _Loaded:
        keys = await self._db.read(repository.signing_keys)
        if not keys:
            # Another process may have raced us; either key is fine, the newest signs.
            await self._db.write(repository.insert_signing_key, generate_key(self._secret))
            keys = await self._db.read(repository.signing_keys)
        now = utcnow()
        horizon = dt.timedelta(seconds=self._lifetime + 300)
        live = [k for k in keys if k.retired_at is None or k.retired_at + horizon > now]
        active = [k for k in live if k.retired_at is None] or live or keys
        newest = max(active, key=lambda k: k.created_at)
        private = serialization.load_pem_private_key(
            open_private_key(newest.private_key, self._secret).encode(), password=None
        )
        assert isinstance(private, Ed25519PrivateKey)
        public: dict[str, Ed25519PublicKey] = {}
        for k in live:
            pk = serialization.load_pem_public_key(k.public_key.encode())
            assert isinstance(pk, Ed25519PublicKey)
            public[k.kid] = pk
        jwks = [public_jwk(k.kid, k.public_key) for k in live]
        return _Loaded(newest.kid, private, public, jwks, time.monotonic())

    async def current(self) -> _Loaded:
        loaded = self._loaded
        if loaded is None or time.monotonic() - loaded.loaded_at > REFRESH_SECONDS:
            async with self._lock:
                loaded = self._loaded
                if loaded is None or time.monotonic() - loaded.loaded_at > REFRESH_SECONDS:
                    loaded = self._loaded = await self._load()
        return loaded

    async def verification_key(self, kid: str) -> Ed25519PublicKey | None:
        loaded = await self.current()
        key = loaded.public.get(kid)
        if (
            key is None
            and time.monotonic() - self._last_unknown_refresh > UNKNOWN_KID_REFRESH_SECONDS
        ):
            # A kid we do not know may be a key another process just rotated in.
            self._last_unknown_refresh = time.monotonic()
            async with self._lock:
                self._loaded = await self._load()
            key = self._loaded.public.get(kid)
        return key

    async def jwks(self) -> dict[str, Any]:
        return {"keys": (await self.current()).jwks}
