"""Found-set keys and cursors (paging/found_sets.py) on their own: what a key carries comes back
whole, nothing of it can be read, and any key or cursor that is tampered with, foreign, misplaced,
expired or malformed is the same 400."""

from __future__ import annotations

import base64
import time
from dataclasses import replace

import pytest

from registrar.core.problems import ProblemError
from registrar.paging.found_sets import (
    FoundSet,
    decode,
    decode_cursor,
    encode,
    encode_cursor,
)

SECRET = b"s" * 32
SCOPES = frozenset({"urn:dartmouth:enrollments:read"})
FOUND = FoundSet(
    resource="enrollments",
    sub="svc-a",
    filters=[("netid", "f001abc"), ("term.sis_term_code", "<202001")],
    snapshot=12345,
    total=17,
    expires=int(time.time()) + 24 * 3600,  # a suite takes minutes; a found set lives a day
)
KEY_REFUSED = ["continuation_key: unknown, expired or not yours; start a new query without it"]
CURSOR_REFUSED = ["cursor: use the one from the Link header"]


def _decode(key: str, **overrides: object) -> FoundSet:
    args: dict[str, object] = {
        "secret": SECRET,
        "resource": "enrollments",
        "sub": "svc-a",
        "scopes": SCOPES,
    }
    args.update(overrides)
    secret = args.pop("secret")
    assert isinstance(secret, bytes)
    return decode(key, secret, **args)  # type: ignore[arg-type]


def test_a_key_names_its_found_set() -> None:
    key = encode(FOUND, SECRET, SCOPES)
    assert _decode(key) == FOUND
    assert key.isascii() and "," not in key and " " not in key  # safe in a header and a URL


def test_a_key_reveals_nothing_readable() -> None:
    """Issue 9 item 2: the key was base64 JSON with the sub, the filters and the counts."""
    key = encode(FOUND, SECRET, SCOPES)
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    for secret_part in (b"svc-a", b"f001abc", b"enrollments", b"12345", (12345).to_bytes(8, "big")):
        assert secret_part not in raw
    # Two keys for the same found set differ (a fresh nonce each), and the figures do not change
    # a key's length: only the filters the client sent do.
    assert encode(FOUND, SECRET, SCOPES) != key
    assert len(encode(replace(FOUND, snapshot=1, total=0), SECRET, SCOPES)) == len(key)


def _refused(key: str, **overrides: object) -> None:
    with pytest.raises(ProblemError) as raised:
        _decode(key, **overrides)
    assert raised.value.status == 400
    assert raised.value.errors == KEY_REFUSED


def test_every_bad_key_is_the_same_400() -> None:
    key = encode(FOUND, SECRET, SCOPES)
    # Every character changed in turn (but the last, which may hold base64's unused bits).
    for i in range(len(key) - 1):
        _refused(key[:i] + ("A" if key[i] != "A" else "B") + key[i + 1 :])
    _refused(key, secret=b"t" * 32)  # another instance's
    _refused(encode(replace(FOUND, sub="svc-b"), SECRET, SCOPES))  # another caller's
    _refused(key, scopes=SCOPES | {"urn:dartmouth:people:private"})  # another token's scopes
    _refused(key, scopes=frozenset())
    _refused(key, resource="petitions")  # another collection's
    _refused(encode(replace(FOUND, expires=int(time.time()) - 1), SECRET, SCOPES))  # expired
    for malformed in ("", "abc", "a.b.c", key[:20], "!!.??", "²", "é" * 40, "x" * 9000):
        _refused(malformed)


def test_a_cursor_belongs_to_its_found_set() -> None:
    key = encode(FOUND, SECRET, SCOPES)
    cursor = encode_cursor(4242, key, SECRET)
    assert decode_cursor(cursor, key, SECRET) == 4242
    # Every cursor has the same length, whatever row it points at.
    assert {len(encode_cursor(n, key, SECRET)) for n in (0, 1, 4242, 2**40)} == {len(cursor)}
    other_key = encode(FOUND, SECRET, SCOPES)  # the same found set, another key
    for bad, with_key in [
        (cursor, other_key),
        (encode_cursor(4242, other_key, SECRET), key),
        (cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB"), key),
        ("4242", key),
        ("²", key),
        ("", key),
        (key, key),
    ]:
        with pytest.raises(ProblemError) as raised:
            decode_cursor(bad, with_key, SECRET)
        assert raised.value.status == 400
        assert raised.value.errors == CURSOR_REFUSED
