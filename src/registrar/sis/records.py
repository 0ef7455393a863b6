"""One line of a SIS extract: hand-written validation into a flat row.

Pydantic per line costs several times what these few type checks do, and a load of a million lines
spends most of its time here, so the checks are plain Python. Every problem is reported as
`line N: what is wrong`, one line, naming the key; values are echoed short and JSON-escaped so a
hostile line cannot break the one-line message.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import orjson

# Column widths from the schema: PostgreSQL enforces them, SQLite would not, so check them here
# for both, or the same extract would load on one backend and fail with a driver error on the other.
MAX_ID = 256
MAX_NETID = 64
MAX_ROLE = 32
MAX_SCHOOL = 16
MAX_SECTION = 128
MAX_TERM = 64
MAX_PTRM = 16
MAX_TERM_CODE = 16
MAX_GRADE = 16

REQUIRED = frozenset(
    {"id", "is_active", "is_in_session", "netid", "role", "school_id", "section", "term"}
)
OPTIONAL = frozenset(
    {"cache_date", "final_grade", "credit_hours_earned", "course_assessment", "confidential"}
)
ALLOWED = REQUIRED | OPTIONAL
SECTION_KEYS = frozenset({"id", "lms_section_id", "sis_section_id"})
TERM_KEYS = frozenset({"id", "lms_term_id", "sis_ptrm_code", "sis_term_code"})
ASSESSMENT_KEYS = frozenset({"submit_date", "opt_out_date"})

# ISO 8601 in UTC, as the API writes it: 2020-03-05T17:53:46Z (fraction and +00:00 accepted).
_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")


class LineError(ValueError):
    """A bad line: the load stops and writes nothing."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Record:
    """A validated line. `row` is the staging row; dates are aware UTC datetimes."""

    row: tuple[Any, ...]  # (line, id, netid, role, school_id, section_id, term_id, is_active,
    #                        is_in_session, final_grade, credit_hours_earned, submit, opt_out)
    section: tuple[str, str | None, str | None]
    term: tuple[str, str | None, str | None, str | None]
    confidential: bool


def show(value: Any, limit: int = 60) -> str:
    """A short, single-line rendering of a value for an error message."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _keys(
    obj: Any, line: int, where: str, required: frozenset[str], allowed: frozenset[str]
) -> None:
    if type(obj) is not dict:
        raise LineError(line, f"{where} must be a JSON object, got {show(obj)}")
    keys = obj.keys()
    if keys >= required and keys <= allowed:
        return
    missing = sorted(required - keys)
    if missing:
        prefix = "" if where == "the line" else f"{where}: "
        raise LineError(line, f"{prefix}missing key(s): {', '.join(missing)}")
    unknown = sorted(keys - allowed)
    prefix = "" if where == "the line" else f"{where}: "
    raise LineError(line, f"{prefix}unknown key(s): {', '.join(show(k) for k in unknown)}")


def _text(value: Any, line: int, name: str, limit: int, *, nullable: bool = False) -> str | None:
    if type(value) is str:
        if len(value) > limit:
            raise LineError(line, f"{name} is longer than {limit} characters")
        if not value and not nullable:
            raise LineError(line, f"{name} must not be empty")
        if "\x00" in value:
            raise LineError(line, f"{name} contains a NUL character")
        return value
    if value is None and nullable:
        return None
    kind = "a string or null" if nullable else "a string"
    raise LineError(line, f"{name} must be {kind}, got {show(value)}")


def _bool(value: Any, line: int, name: str) -> bool:
    if value is True or value is False:
        return value
    raise LineError(line, f"{name} must be true or false, got {show(value)}")


def _utc(value: Any, line: int, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if type(value) is str and _UTC.fullmatch(value):
        try:
            return dt.datetime.fromisoformat(value).astimezone(dt.UTC)
        except ValueError:
            pass  # the shape is right, the calendar is not (2020-02-30): same message
    raise LineError(
        line,
        f"{name} must be an ISO 8601 UTC date-time like 2020-03-05T17:53:46Z or null, "
        f"got {show(value)}",
    )


def check(obj: Any, line: int) -> Record:
    """Validate one parsed line (or one generated record) against the extract's format."""
    _keys(obj, line, "the line", REQUIRED, ALLOWED)
    netid = _text(obj["netid"], line, "netid", MAX_NETID)
    role = _text(obj["role"], line, "role", MAX_ROLE)
    school_id = _text(obj["school_id"], line, "school_id", MAX_SCHOOL, nullable=True)
    is_active = _bool(obj["is_active"], line, "is_active")
    is_in_session = _bool(obj["is_in_session"], line, "is_in_session")

    section = obj["section"]
    _keys(section, line, "section", SECTION_KEYS, SECTION_KEYS)
    section_id = _text(section["id"], line, "section.id", MAX_SECTION)
    lms_section_id = _text(
        section["lms_section_id"], line, "section.lms_section_id", MAX_SECTION, nullable=True
    )
    sis_section_id = _text(
        section["sis_section_id"], line, "section.sis_section_id", MAX_SECTION, nullable=True
    )

    term = obj["term"]
    _keys(term, line, "term", TERM_KEYS, TERM_KEYS)
    term_id = _text(term["id"], line, "term.id", MAX_TERM)
    lms_term_id = _text(term["lms_term_id"], line, "term.lms_term_id", MAX_TERM, nullable=True)
    ptrm = _text(term["sis_ptrm_code"], line, "term.sis_ptrm_code", MAX_PTRM, nullable=True)
    term_code = _text(
        term["sis_term_code"], line, "term.sis_term_code", MAX_TERM_CODE, nullable=True
    )

    enrollment_id = _text(obj["id"], line, "id", MAX_ID)
    expected = f"{section_id}-{netid}-{role}"
    if enrollment_id != expected:
        raise LineError(
            line,
            f"id must be {{section.id}}-{{netid}}-{{role}} = {show(expected)}, "
            f"got {show(enrollment_id)}",
        )

    grade = _text(obj.get("final_grade"), line, "final_grade", MAX_GRADE, nullable=True)
    hours = obj.get("credit_hours_earned")
    if hours is not None:
        # bool is an int to Python, not a number to JSON's readers.
        if type(hours) not in (int, float) or not 0 <= hours < 1000:
            raise LineError(
                line,
                f"credit_hours_earned must be a number from 0 to 999 or null, got {show(hours)}",
            )
        hours = float(hours)

    submit = opt_out = None
    assessment = obj.get("course_assessment")
    if assessment is not None:
        _keys(assessment, line, "course_assessment", ASSESSMENT_KEYS, ASSESSMENT_KEYS)
        submit = _utc(assessment["submit_date"], line, "course_assessment.submit_date")
        opt_out = _utc(assessment["opt_out_date"], line, "course_assessment.opt_out_date")
        if submit is not None and opt_out is not None:
            raise LineError(
                line, "course_assessment: at most one of submit_date and opt_out_date may be set"
            )

    cache_date = obj.get("cache_date")
    if cache_date is not None and type(cache_date) is not str:
        raise LineError(line, f"cache_date must be a string or null, got {show(cache_date)}")
    confidential = obj.get("confidential", False)
    if confidential is not True and confidential is not False:
        raise LineError(line, f"confidential must be true or false, got {show(confidential)}")

    return Record(
        row=(
            line,
            enrollment_id,
            netid,
            role,
            school_id,
            section_id,
            term_id,
            is_active,
            is_in_session,
            grade,
            hours,
            submit,
            opt_out,
        ),
        section=(section_id, lms_section_id, sis_section_id),  # type: ignore[arg-type]
        term=(term_id, lms_term_id, ptrm, term_code),  # type: ignore[arg-type]
        confidential=confidential,
    )


def parse_line(raw: bytes, line: int) -> Any:
    """JSON of one line; the caller skips blank lines before calling."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "UTF-8" in message or "utf-8" in message:
            raise LineError(line, "not valid UTF-8") from None
        raise LineError(line, f"not valid JSON ({message.splitlines()[0]})") from None
