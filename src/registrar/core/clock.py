"""Time: the service's clock, and the two ways a moment is written on the wire (always UTC, `Z`).

One precision per field, the same in storage, in task records and in reads (spec sections 1-2):
- `iso_z`, whole seconds (2020-03-05T17:53:46Z): every date of a representation
  (`course_assessment` dates, `cache_date`, `effective_date`) and a task's `request_date`. The
  dates a client or the SIS writes are kept to the second (`parse_utc` truncates fractional
  seconds: the choice the contract allows, made the same way for PATCH, the task payload and
  the SIS load), and the service's own stamps for those fields are taken with `whole_second`.
- `iso_z_micro`, always six fractional digits (2024-11-20T20:54:27.328833Z): a task's
  `completed_date`, which clients time tasks with.
(A task's stored `request_date` keeps its microseconds: it is the order "the newest request wins"
follows between requests of the same second; the record shows it to the second.)
Both take None as None. The date-times the API and the SIS extract accept are `UTC_DATETIME`.
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


def whole_second(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=0)


def parse_utc(text: str) -> dt.datetime:
    """An aware UTC datetime from text that matches UTC_DATETIME, to the second (fractional
    seconds are truncated); ValueError for a date the calendar lacks (2020-02-30)."""
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    return whole_second(parsed)


@overload
def iso_z(value: dt.datetime) -> str: ...
@overload
def iso_z(value: None) -> None: ...
def iso_z(value: dt.datetime | None) -> str | None:
    """2020-03-05T17:53:46Z: whole seconds (isoformat: strftime writes year 999 as `999`)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


@overload
def iso_z_micro(value: dt.datetime) -> str: ...
@overload
def iso_z_micro(value: None) -> None: ...
def iso_z_micro(value: dt.datetime | None) -> str | None:
    """2024-11-20T20:54:27.328833Z: always six fractional digits, even when they are all 0.

    isoformat, not strftime: strftime does not zero-pad years before 1000 on every platform."""
    if value is None:
        return None
    naive = value.astimezone(dt.UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds") + "Z"
