"""API keys: random, shown once, stored only as a keyed hash.

A key is `rk_<id>_<secret>`: `id` is 8 random lowercase letters and digits, public by design (it is
stored and `registrar clients list` shows `rk_<id>`, so an operator can tell which key a client
holds), and `secret` carries 256 bits of randomness. With that much randomness a fast keyed hash
(HMAC-SHA256) is as safe as a slow one and keeps the login service cheap; the optional pepper
(REGISTRAR_KEY_ENCRYPTION_SECRET) means a copy of the database alone is not enough to test guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

KEY_PREFIX = "rk_"
ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 8
_KEY_SHAPE = re.compile(rf"^{KEY_PREFIX}([a-z0-9]{{{ID_LENGTH}}})_[A-Za-z0-9_-]{{43}}$")


def new_api_key() -> str:
    key_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
    return f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str, pepper: str | None) -> str:
    secret = (pepper or "registrar-api-key").encode()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def display_prefix(key: str) -> str:
    """The key's public part, `rk_<id>`; empty for a key without an id (none of its characters
    may be shown: they are all secret)."""
    shape = _KEY_SHAPE.match(key)
    return f"{KEY_PREFIX}{shape.group(1)}" if shape else ""


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
