"""What a reader holds of the feed's positions: opaque cursors and event ids.

A position (the events table's commit order) would tell a reader how many events it was not shown
(a confidential person's, another requester's task): the gaps. So a cursor is the position sealed
with AES-GCM (authenticated encryption: unreadable, and any change to it is refused), and an
event's `id` is an HMAC of its position (unique, stable, the same for every reader and webhook,
and says nothing about its neighbours). The key is an instance secret kept in the database, so every
process reads every other's cursors and they survive restarts.

A cursor also seals where its reader's reading began (`since`: the newest position when it first
read without a cursor), carried along every cursor that follows: the feed shows a reader without
the private scope that a record left its view (a confidentiality flip) only when the flip came
after its reading began, so a reader that starts later learns nothing of that record. Cursors of
the first format (`e1`, the position alone) are still read, as having begun at the start.
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
_VERSION = b"e2"
_VERSION_1 = b"e1"
_NONCE = 12
_MAX_CURSOR = 200


class EventKeys:
    """Seals positions into cursors and names events; built from the instance secret."""

    def __init__(self, secret: bytes) -> None:
        # Distinct keys per use, from the one secret (the cursor's is AES-256).
        self._aead = AESGCM(_derive(secret, b"cursor"))
        self._id_key = _derive(secret, b"id")

    def cursor(self, position: int, since: int = 0) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, struct.pack(">qq", position, since), _VERSION)
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def position(self, cursor: str) -> int:
        """The position a cursor seals; 400 for anything this instance did not issue."""
        return self.read(cursor)[0]

    def read(self, cursor: str) -> tuple[int, int]:
        """(position, since) a cursor seals; 400 for anything this instance did not issue."""
        invalid = bad_request(
            "The cursor is not valid.",
            ["after: not a cursor this feed gave out; start without one, or from a saved one"],
        )
        if not cursor or len(cursor) > _MAX_CURSOR or not cursor.isascii():
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            nonce, sealed = raw[:_NONCE], raw[_NONCE:]
            try:
                found, since = struct.unpack(">qq", self._aead.decrypt(nonce, sealed, _VERSION))
            except InvalidTag:
                (found,) = struct.unpack(">q", self._aead.decrypt(nonce, sealed, _VERSION_1))
                since = 0
        except (ValueError, InvalidTag, struct.error):
            raise invalid from None
        return int(found), int(since)

    def event_id(self, position: int) -> str:
        digest = hmac.new(self._id_key, struct.pack(">q", position), hashlib.sha256)
        return digest.hexdigest()[:32]


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"registrar events " + purpose, hashlib.sha256).digest()
