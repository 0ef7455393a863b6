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
