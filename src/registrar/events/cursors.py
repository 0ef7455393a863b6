"""What a reader holds of the feed's positions: opaque cursors and event ids.

A position (the events table's commit order) would tell a reader how many events it was not shown
(a confidential person's, another requester's task): the gaps. So a cursor is the position sealed
with AES-GCM (authenticated encryption: unreadable, and any change to it is refused), and an
event's `id` is an HMAC of its position (unique, stable, the same for every reader and webhook,
and says nothing about its neighbours). The key is an instance secret kept in the database, so every
process reads every other's cursors and they survive restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registrar.core.problems import bad_request

SECRET_NAME = "event-cursors"  # noqa: S105 - the name of a secret, not a secret
_VERSION = b"e1"
_NONCE = 12
_MAX_CURSOR = 200


class EventKeys:
    """Seals positions into cursors and names events; built from the instance secret."""

    def __init__(self, secret: bytes) -> None:
        # Distinct keys per use, from the one secret (the cursor's is AES-256).
        self._aead = AESGCM(_derive(secret, b"cursor"))
        self._id_key = _derive(secret, b"id")

    def cursor(self, position: int) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, struct.pack(">q", position), _VERSION)
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def position(self, cursor: str) -> int:
        """The position a cursor seals; 400 for anything this instance did not issue."""
        invalid = bad_request(
            "The cursor is not valid.",
            ["after: not a cursor this feed gave out; start without one, or from a saved one"],
        )
        if not cursor or len(cursor) > _MAX_CURSOR or not cursor.isascii():
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _VERSION)
            (found,) = struct.unpack(">q", plain)
        except (ValueError, InvalidTag, struct.error):
            raise invalid from None
        return int(found)

    def event_id(self, position: int) -> str:
        digest = hmac.new(self._id_key, struct.pack(">q", position), hashlib.sha256)
        return digest.hexdigest()[:32]


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"registrar events " + purpose, hashlib.sha256).digest()
