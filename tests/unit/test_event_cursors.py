"""Event cursors seal the position and where the reading began; a cursor of the first format (the
position alone), as a client may have stored it before, is still read."""

from __future__ import annotations

import base64
import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registrar.core.problems import ProblemError
from registrar.events.cursors import EventKeys, _derive

SECRET = b"k" * 32


def test_a_cursor_seals_position_and_start() -> None:
    keys = EventKeys(SECRET)
    assert keys.read(keys.cursor(1234, 1000)) == (1234, 1000)
    assert keys.position(keys.cursor(7)) == 7
    with pytest.raises(ProblemError):
        EventKeys(b"x" * 32).read(keys.cursor(1234, 1000))


def test_a_first_format_cursor_reads_as_begun_at_the_start() -> None:
    nonce = os.urandom(12)
    sealed = AESGCM(_derive(SECRET, b"cursor")).encrypt(nonce, struct.pack(">q", 99), b"e1")
    old = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
    assert EventKeys(SECRET).read(old) == (99, 0)
