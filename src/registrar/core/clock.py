"""Time: the service's clock, and the two ways a moment is written on the wire (always UTC, `Z`).

`iso_z` is the portal's format, whole seconds (representations, the demo's dates); `iso_z_precise`
keeps microseconds when there are any (task dates, which clients time tasks with, and a PATCH's
normalised dates). Both take None as None. The date-times the API and the SIS extract accept are
`UTC_DATETIME`, read by `parse_utc`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import overload

# ISO 8601 in UTC, as the API writes it: 2020-03-05T17:53:46Z; up to 6 fractional digits and
# +00:00 accepted. Other offsets are refused rather than converted: a client sending local time
# has most likely made a mistake.
UTC_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_utc(text: str) -> dt.datetime:
    """An aware UTC datetime from text that matches UTC_DATETIME; ValueError for a date the
    calendar lacks (2020-02-30)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


@overload
def iso_z(value: dt.datetime) -> str: ...
@overload
def iso_z(value: None) -> None: ...
def iso_z(value: dt.datetime | None) -> str | None:
    """2020-03-05T17:53:46Z: whole seconds."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@overload
def iso_z_precise(value: dt.datetime) -> str: ...
@overload
def iso_z_precise(value: None) -> None: ...
def iso_z_precise(value: dt.datetime | None) -> str | None:
    """2020-03-05T17:53:46.123456Z: microseconds kept when present.

    isoformat, not strftime: strftime does not zero-pad years before 1000 on every platform."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
