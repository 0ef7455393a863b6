"""How a value the caller sent is echoed in a message: short, on one line, never more than
`ECHO_LIMIT` characters, cut with "...". Problems list what was wrong, not the whole input."""

from __future__ import annotations

from typing import Any

import orjson

ECHO_LIMIT = 64


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` as it is, or cut to `limit` characters with "..." at the end."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show(value: Any) -> str:
    """A value as JSON (so quotes, control characters and line breaks are escaped), shortened:
    for one-line messages about untrusted input, such as a bad line of a file."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return shorten(text)


def usable_id(text: str, max_length: int) -> bool:
    """Whether an id from a URL can name a record at all: 1 to `max_length` printable characters.

    Every route that takes an id asks this before the id reaches the database, so that a NUL, a
    control character or a megabyte of text is simply an unknown id (404, or an empty collection)
    on both databases, instead of a driver error on one of them (PostgreSQL refuses NUL in text).
    """
    return 0 < len(text) <= max_length and text.isprintable()
