"""How a client asks to wait: `?wait=S` on a read (the long-poll) and `Prefer: wait=S` on a write
(RFC 7240). One parser for both, so the same spelling means the same thing everywhere."""

from __future__ import annotations

import math

from starlette.datastructures import Headers

from registrar.core.problems import bad_request

PREFERENCE_APPLIED = "Preference-Applied"


def seconds(name: str, raw: str | None, maximum: float) -> float:
    """`?wait=S`-style seconds: 0 when absent, at most `maximum` (more is held `maximum`); 400
    for anything but a number from 0."""
    if raw is None:
        return 0.0
    try:
        value = float(raw) if raw.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise bad_request(f"Invalid {name}.", [f"{name}: seconds, from 0 to {maximum:g}"])
    return min(value, maximum)


def preferred_wait(headers: Headers, maximum: float) -> float:
    """`Prefer: wait=S` (RFC 7240 section 4.3), among any other preferences: 0 when absent. A
    preference the server cannot read is ignored, as the RFC asks, never an error."""
    for header in headers.getlist("prefer"):
        for preference in header.split(","):
            name, _eq, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() != "wait":
                continue
            value = value.strip().strip('"')
            if value.isascii() and value.isdigit():
                return min(float(value), maximum)
    return 0.0
