"""Subscription secrets at rest: sealed with AES-GCM-SIV under a key derived from an instance
secret, as found-set keys and cursors are (paging/found_sets.py).

The `whsec_` secret is what signs every delivery, so whoever reads it can forge events to the
receiver. A row of the webhooks table (a dump of that table, a replica of it, a log of its rows,
a support query's `SELECT *`) no longer gives it away: the stored value is
`sealed1:` + base64url(nonce + ciphertext), bound to the subscription's id as associated data (a
sealed value copied onto another subscription does not open). The key is derived (HKDF) from the
`webhook-secrets` instance secret, which lives in `instance_secrets` like the other instance keys:
a copy of the whole database still holds both (the same trust as cursors and found sets; an
operator key from the environment would protect against that, and is left for later).
AES-GCM-SIV: random nonces under one long-lived key are no risk (nonce-misuse resistant).
"""

from __future__ import annotations

import base64
import binascii
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_NAME = "webhook-secrets"  # noqa: S105 - the name of a secret, not a secret
PREFIX = "sealed1:"
_NONCE = 12


class SecretBox:
    """Seals and opens subscription secrets under one instance secret."""

    def __init__(self, instance_secret: bytes) -> None:
        self._cipher = _cipher(instance_secret)

    def seal(self, webhook_id: str, secret: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._cipher.encrypt(nonce, secret.encode(), webhook_id.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, webhook_id: str, stored: str) -> str:
        """The secret a stored value seals; ValueError for anything this instance did not seal
        for this subscription."""
        if not stored.startswith(PREFIX):
            raise ValueError("not a sealed webhook secret")
        text = stored[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = self._cipher.decrypt(raw[:_NONCE], raw[_NONCE:], webhook_id.encode())
        except (binascii.Error, InvalidTag) as exc:
            raise ValueError("not a sealed webhook secret") from exc
        return plain.decode()


@functools.lru_cache(maxsize=4)  # one secret per instance; a handful in the tests
def _cipher(instance_secret: bytes) -> AESGCMSIV:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"registrar webhook secrets v1"
    ).derive(instance_secret)
    return AESGCMSIV(key)
