"""Found sets: what `X-Request-ID` names and `continuation_key` pages; and the `cursor` of a
`Link: rel="next"` URL.

A found set is a sealed, self-contained key: the filters, the highest row key that existed when it
was made (newer rows are not in it), its size and its expiry. Nothing is written per query, any
process can read it (the secret is in the database), and it survives restarts. Paging follows the
rows' stable surrogate key, so a client sees each record at most once even while loads change the
data.

Keys and cursors are opaque (issue 9 item 2: a readable key and a cursor that was the row key let a
plain read token count the hidden rows and find their neighbours). Both are sealed with AES-GCM-SIV
(authenticated encryption; nonce-misuse resistant, so the random nonce of a long-lived key is no
risk), under a key derived from the instance's secret. A found set's key is bound to the resource,
the `sub` and the token's scopes (its size was counted with that view), and a cursor to its found
set's key, as associated data: any other token, resource or found set, like a tampered, expired or
malformed value, is the same 400. The plaintext has a fixed layout, so a key's length depends only
on the filters the client sent, and every cursor has the same length.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from registrar.core.problems import ProblemError, bad_request

SECRET_NAME = "found-set-signing"  # noqa: S105 - the name of a secret, not a secret
FORMAT = 2  # 1 was the signed, readable key
NONCE_BYTES = 12
KEY_ID_BYTES = 2
_HEADER = struct.Struct(">BH")  # format, key id
_FIGURES = struct.Struct(">qqq")  # snapshot, total, expires
_POSITION = struct.Struct(">q")
MAX_KEY_LENGTH = 8192


@dataclass(frozen=True)
class FoundSet:
    resource: str
    sub: str
    filters: list[tuple[str, str]]
    snapshot: int
    total: int
    expires: int


@dataclass(frozen=True)
class _Sealer:
    key_id: int
    cipher: AESGCMSIV


@functools.lru_cache(maxsize=4)  # one secret per instance; a handful in the tests
def _sealer(secret: bytes) -> _Sealer:
    """The cipher and its key id, derived from the instance's secret. The key id lets a key made
    under another secret (after a rotation) be told apart from a tampered one without trying."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32 + KEY_ID_BYTES, salt=None, info=b"registrar paging v2"
    ).derive(secret)
    return _Sealer(int.from_bytes(derived[32:]), AESGCMSIV(derived[:32]))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError(text)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _seal(secret: bytes, plaintext: bytes, context: bytes) -> str:
    sealer = _sealer(secret)
    header = _HEADER.pack(FORMAT, sealer.key_id)
    nonce = os.urandom(NONCE_BYTES)
    return _b64(header + nonce + sealer.cipher.encrypt(nonce, plaintext, header + context))


def _open(secret: bytes, text: str, context: bytes, invalid: ProblemError) -> bytes:
    """The plaintext of a sealed value, or `invalid` for anything else."""
    if len(text) > MAX_KEY_LENGTH:
        raise invalid
    try:
        sealed = _unb64(text)
    except (ValueError, binascii.Error):
        raise invalid from None
    sealer = _sealer(secret)
    start = _HEADER.size + NONCE_BYTES
    if len(sealed) < start or _HEADER.unpack_from(sealed) != (FORMAT, sealer.key_id):
        raise invalid
    try:
        return sealer.cipher.decrypt(
            sealed[_HEADER.size : start], sealed[start:], sealed[: _HEADER.size] + context
        )
    except InvalidTag:
        raise invalid from None


def _owner(resource: str, sub: str, scopes: Iterable[str]) -> bytes:
    """What a found set is bound to: its collection and the token that counted it."""
    return _owner_of(resource, sub, frozenset(scopes))


@functools.lru_cache(maxsize=1024)  # bounded (issue 9 item 7); a token's is asked every page
def _owner_of(resource: str, sub: str, scopes: frozenset[str]) -> bytes:
    return json.dumps([resource, sub, sorted(scopes)], separators=(",", ":")).encode()


def encode(found: FoundSet, secret: bytes, scopes: Iterable[str]) -> str:
    """The key naming `found` for the token with `found.sub` and `scopes`."""
    filters = json.dumps(found.filters, separators=(",", ":")).encode()
    plaintext = _FIGURES.pack(found.snapshot, found.total, found.expires) + filters
    return _seal(secret, plaintext, _owner(found.resource, found.sub, scopes))


def decode(key: str, secret: bytes, *, resource: str, sub: str, scopes: Iterable[str]) -> FoundSet:
    """The found set a key names, or 400: unknown, tampered, expired, foreign or misplaced."""
    invalid = bad_request(
        "The continuation_key is not valid.",
        ["continuation_key: unknown, expired or not yours; start a new query without it"],
    )
    plaintext = _open(secret, key, _owner(resource, sub, scopes), invalid)
    try:
        snapshot, total, expires = _FIGURES.unpack_from(plaintext)
        filters = json.loads(plaintext[_FIGURES.size :])
        pairs = [(str(n), str(v)) for n, v in filters]
    except (ValueError, TypeError, struct.error):
        raise invalid from None
    if expires < time.time():
        raise invalid
    return FoundSet(resource, sub, pairs, snapshot, total, expires)


def encode_cursor(position: int, key: str, secret: bytes) -> str:
    """Where the next page of the found set `key` starts (a row key), sealed to that key."""
    return _seal(secret, _POSITION.pack(position), b"cursor:" + key.encode())


def decode_cursor(cursor: str, key: str, secret: bytes) -> int:
    """The row key a cursor holds, or 400 for any cursor not made for the found set `key`."""
    invalid = bad_request("`cursor` is not valid.", ["cursor: use the one from the Link header"])
    plaintext = _open(secret, cursor, b"cursor:" + key.encode(), invalid)
    if len(plaintext) != _POSITION.size:
        raise invalid
    (position,) = _POSITION.unpack(plaintext)
    return int(position)
