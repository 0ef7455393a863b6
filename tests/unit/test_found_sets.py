"""Found-set keys (paging/found_sets.py) on their own: what a key carries comes back whole, and any
key that is tampered with, foreign, misplaced, expired or malformed is the same 400."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from registrar.core.problems import ProblemError
from registrar.paging.found_sets import FoundSet, decode, encode

SECRET = b"s" * 32
FOUND = FoundSet(
    resource="enrollments",
    sub="svc-a",
    filters=[("netid", "f001abc"), ("term.sis_term_code", "<202001")],
    snapshot=12345,
    total=17,
    expires=int(time.time()) + 24 * 3600,  # a suite takes minutes; a found set lives a day
)


def test_a_key_names_its_found_set() -> None:
    key = encode(FOUND, SECRET)
    assert decode(key, SECRET, resource="enrollments", sub="svc-a") == FOUND
    assert key.isascii() and "," not in key and " " not in key  # safe in a header and a URL


def _refused(key: str, *, secret: bytes = SECRET, resource: str = "enrollments") -> None:
    with pytest.raises(ProblemError) as raised:
        decode(key, secret, resource=resource, sub="svc-a")
    assert raised.value.status == 400
    assert raised.value.errors == [
        "continuation_key: unknown, expired or not yours; start a new query without it"
    ]


def test_every_bad_key_is_the_same_400() -> None:
    key = encode(FOUND, SECRET)
    payload, mac = key.split(".")
    other_payload = encode(replace(FOUND, total=18), SECRET).split(".")[0]
    _refused(f"{other_payload}.{mac}")  # tampered
    _refused(key, secret=b"t" * 32)  # another instance's
    _refused(encode(replace(FOUND, sub="svc-b"), SECRET))  # another caller's
    _refused(key, resource="petitions")  # another collection's
    _refused(encode(replace(FOUND, expires=int(time.time()) - 1), SECRET))  # expired
    for malformed in ("", "abc", "a.b.c", payload, "!!.??", "x" * 9000 + ".y"):
        _refused(malformed)
