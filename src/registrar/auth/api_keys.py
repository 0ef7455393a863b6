"""API keys: random, shown once, stored only as a keyed hash.

Keys carry 256 bits of randomness, so a fast keyed hash (HMAC-SHA256) is as safe as a slow one and
keeps the login service cheap; the optional pepper (REGISTRAR_KEY_ENCRYPTION_SECRET) means a copy of
the database alone is not enough to test guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "rk_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str, pepper: str | None) -> str:
    secret = (pepper or "registrar-api-key").encode()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def display_prefix(key: str) -> str:
    return key[:10]


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
