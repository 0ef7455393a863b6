"""One line of a SIS extract: hand-written validation into a flat row.

Pydantic per line costs several times what these few type checks do, and a load of a million lines
spends most of its time here, so the checks are plain Python. Every problem is reported as
`line N: what is wrong`, one line, naming the key; values are echoed short and JSON-escaped so a
hostile line cannot break the one-line message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from registrar.core.clock import UTC_DATETIME, parse_utc
from registrar.core.text import show
from registrar.db.base import width
from registrar.enrollments.models import Enrollment, Section, Term
from registrar.people.models import Person

# Column widths from the models: PostgreSQL enforces them, SQLite would not, so check them here for
# both, or the same extract would load on one backend and fail with a driver error on the other.
MAX_ID = width(Enrollment.id)
MAX_NETID = width(Person.netid)
MAX_ROLE = width(Enrollment.role)
MAX_SCHOOL = width(Enrollment.school_id)
MAX_SECTION = width(Section.id)
MAX_LMS_SECTION = width(Section.lms_section_id)
MAX_SIS_SECTION = width(Section.sis_section_id)
MAX_TERM = width(Term.id)
MAX_LMS_TERM = width(Term.lms_term_id)
MAX_PTRM = width(Term.sis_ptrm_code)
MAX_TERM_CODE = width(Term.sis_term_code)
MAX_GRADE = width(Enrollment.final_grade)

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


class LoadFailed(Exception):
    """A load that cannot go on (bad line, unreadable file): one line for the operator."""


class LineError(ValueError):
    """A bad line: the load stops and writes nothing."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


class StageRow(NamedTuple):
    """A line as the staging table takes it (its columns, in order)."""

    line: int
    id: str
    netid: str
    role: str
    school_id: str | None
    section_id: str
    term_id: str
    is_active: bool
    is_in_session: bool
    final_grade: str | None
    credit_hours_earned: float | None
    course_submit_date: Any  # an aware datetime, or its SQLite text once staged there
    course_opt_out_date: Any
    line_hash: int | None = None  # `line_hash` of the line's bytes (None: not from a file)


class SectionRow(NamedTuple):
    id: str
    lms_section_id: str | None
    sis_section_id: str | None


class TermRow(NamedTuple):
    id: str
    lms_term_id: str | None
    sis_ptrm_code: str | None
    sis_term_code: str | None


@dataclass(frozen=True, slots=True)
class Record:
    """A validated line: its staging row (dates as aware UTC datetimes), its section and term, and
    whether it says the person is confidential."""

    row: StageRow
    section: SectionRow
    term: TermRow
    confidential: bool


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


def _required(value: Any, line: int, name: str, limit: int) -> str:
    """A string that must be there and not empty."""
    text = _text(value, line, name, limit)
    assert text is not None  # _text refuses None unless nullable
    return text


def _bool(value: Any, line: int, name: str) -> bool:
    if value is True or value is False:
        return value
    raise LineError(line, f"{name} must be true or false, got {show(value)}")


def _utc(value: Any, line: int, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if type(value) is str and UTC_DATETIME.fullmatch(value):
        try:
            return parse_utc(value)
        except ValueError:
            pass  # the shape is right, the calendar is not (2020-02-30): same message
    raise LineError(
        line,
        f"{name} must be an ISO 8601 UTC date-time like 2020-03-05T17:53:46Z or null, "
        f"got {show(value)}",
    )


def check(obj: Any, line: int, line_hash: int | None = None) -> Record:
    """Validate one parsed line (or one generated record) against the extract's format; a bad
    line raises one LineError naming every problem it has (issue 11 item 12), `; `-separated.
    `line_hash` (the line's `line_hash`) is carried into the staging row."""
    try:
        return _check(obj, line, line_hash)
    except LineError as first:
        problems = _problems(obj, line) or [first.problem]
        raise LineError(line, "; ".join(problems)) from None


def _problems(obj: Any, line: int) -> list[str]:
    """Every problem of a bad line: each check of `_check` run on its own. Only for lines that
    failed, so the fast path stays one pass that stops at the first problem."""
    found: list[str] = []

    def attempt(check_one: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return check_one(*args, **kwargs)
        except LineError as exc:
            found.append(exc.problem)
            return _BAD

    def keys(value: Any, where: str, required: frozenset[str], allowed: frozenset[str]) -> bool:
        if type(value) is not dict:
            attempt(_keys, value, line, where, required, allowed)
            return False
        prefix = "" if where == "the line" else f"{where}: "
        missing = sorted(required - value.keys())
        unknown = sorted(value.keys() - allowed)
        if missing:
            found.append(f"{prefix}missing key(s): {', '.join(missing)}")
        if unknown:
            found.append(f"{prefix}unknown key(s): {', '.join(show(k) for k in unknown)}")
        return True

    if not keys(obj, "the line", frozenset(), ALLOWED):
        return found
    missing = sorted(REQUIRED - obj.keys())
    if missing:
        found.insert(0, f"missing key(s): {', '.join(missing)}")
    netid = attempt(_required, obj["netid"], line, "netid", MAX_NETID) if "netid" in obj else _BAD
    role = attempt(_required, obj["role"], line, "role", MAX_ROLE) if "role" in obj else _BAD
    if "school_id" in obj:
        attempt(_text, obj["school_id"], line, "school_id", MAX_SCHOOL, nullable=True)
    for name in ("is_active", "is_in_session"):
        if name in obj:
            attempt(_bool, obj[name], line, name)
    section_id: Any = _BAD
    section = obj.get("section")
    if "section" in obj and keys(section, "section", SECTION_KEYS, SECTION_KEYS):
        if "id" in section:
            section_id = attempt(_required, section["id"], line, "section.id", MAX_SECTION)
        for name, limit in (
            ("lms_section_id", MAX_LMS_SECTION),
            ("sis_section_id", MAX_SIS_SECTION),
        ):
            if name in section:
                attempt(_text, section[name], line, f"section.{name}", limit, nullable=True)
    term = obj.get("term")
    if "term" in obj and keys(term, "term", TERM_KEYS, TERM_KEYS):
        for name, limit, nullable in (
            ("id", MAX_TERM, False),
            ("lms_term_id", MAX_LMS_TERM, True),
            ("sis_ptrm_code", MAX_PTRM, True),
            ("sis_term_code", MAX_TERM_CODE, True),
        ):
            if name in term:
                attempt(_text, term[name], line, f"term.{name}", limit, nullable=nullable)
    if "id" in obj:
        enrollment_id = attempt(_required, obj["id"], line, "id", MAX_ID)
        if _BAD not in (enrollment_id, netid, role, section_id):
            attempt(_same_id, enrollment_id, section_id, netid, role, line)
    attempt(_text, obj.get("final_grade"), line, "final_grade", MAX_GRADE, nullable=True)
    attempt(_hours, obj.get("credit_hours_earned"), line)
    assessment = obj.get("course_assessment")
    if assessment is not None and keys(
        assessment, "course_assessment", ASSESSMENT_KEYS, ASSESSMENT_KEYS
    ):
        dates = [
            attempt(_utc, assessment[k], line, f"course_assessment.{k}")
            for k in ("submit_date", "opt_out_date")
            if k in assessment
        ]
        if len(dates) == 2 and _BAD not in dates:
            attempt(_one_date, *dates, line)
    attempt(_cache_date, obj.get("cache_date"), line)
    attempt(_confidential, obj.get("confidential", False), line)
    return found


_BAD = object()  # a value `_problems` could not read


def _same_id(enrollment_id: str, section_id: str, netid: str, role: str, line: int) -> None:
    expected = f"{section_id}-{netid}-{role}"
    if enrollment_id != expected:
        raise LineError(
            line,
            f"id must be {{section.id}}-{{netid}}-{{role}} = {show(expected)}, "
            f"got {show(enrollment_id)}",
        )


def _hours(hours: Any, line: int) -> float | None:
    if hours is None:
        return None
    # bool is an int to Python, not a number to JSON's readers.
    if type(hours) not in (int, float) or not 0 <= hours < 1000:
        raise LineError(
            line, f"credit_hours_earned must be a number from 0 to 999 or null, got {show(hours)}"
        )
    return float(hours)


def _one_date(submit: Any, opt_out: Any, line: int) -> None:
    if submit is not None and opt_out is not None:
        raise LineError(
            line, "course_assessment: at most one of submit_date and opt_out_date may be set"
        )


def _cache_date(cache_date: Any, line: int) -> None:
    if cache_date is not None and type(cache_date) is not str:
        raise LineError(line, f"cache_date must be a string or null, got {show(cache_date)}")


def _confidential(confidential: Any, line: int) -> bool:
    if confidential is not True and confidential is not False:
        raise LineError(line, f"confidential must be true or false, got {show(confidential)}")
    return confidential


def _check(obj: Any, line: int, line_hash: int | None) -> Record:
    _keys(obj, line, "the line", REQUIRED, ALLOWED)
    netid = _required(obj["netid"], line, "netid", MAX_NETID)
    role = _required(obj["role"], line, "role", MAX_ROLE)
    school_id = _text(obj["school_id"], line, "school_id", MAX_SCHOOL, nullable=True)
    is_active = _bool(obj["is_active"], line, "is_active")
    is_in_session = _bool(obj["is_in_session"], line, "is_in_session")

    section = obj["section"]
    _keys(section, line, "section", SECTION_KEYS, SECTION_KEYS)
    section_id = _required(section["id"], line, "section.id", MAX_SECTION)
    lms_section_id = _text(
        section["lms_section_id"], line, "section.lms_section_id", MAX_LMS_SECTION, nullable=True
    )
    sis_section_id = _text(
        section["sis_section_id"], line, "section.sis_section_id", MAX_SIS_SECTION, nullable=True
    )

    term = obj["term"]
    _keys(term, line, "term", TERM_KEYS, TERM_KEYS)
    term_id = _required(term["id"], line, "term.id", MAX_TERM)
    lms_term_id = _text(term["lms_term_id"], line, "term.lms_term_id", MAX_LMS_TERM, nullable=True)
    ptrm = _text(term["sis_ptrm_code"], line, "term.sis_ptrm_code", MAX_PTRM, nullable=True)
    term_code = _text(
        term["sis_term_code"], line, "term.sis_term_code", MAX_TERM_CODE, nullable=True
    )

    enrollment_id = _required(obj["id"], line, "id", MAX_ID)
    _same_id(enrollment_id, section_id, netid, role, line)

    grade = _text(obj.get("final_grade"), line, "final_grade", MAX_GRADE, nullable=True)
    hours = _hours(obj.get("credit_hours_earned"), line)

    submit = opt_out = None
    assessment = obj.get("course_assessment")
    if assessment is not None:
        _keys(assessment, line, "course_assessment", ASSESSMENT_KEYS, ASSESSMENT_KEYS)
        submit = _utc(assessment["submit_date"], line, "course_assessment.submit_date")
        opt_out = _utc(assessment["opt_out_date"], line, "course_assessment.opt_out_date")
        _one_date(submit, opt_out, line)

    _cache_date(obj.get("cache_date"), line)
    confidential = _confidential(obj.get("confidential", False), line)

    return Record(
        row=StageRow(
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
            line_hash,
        ),
        section=SectionRow(section_id, lms_section_id, sis_section_id),
        term=TermRow(term_id, lms_term_id, ptrm, term_code),
        confidential=confidential,
    )


# Part of every line hash: change it whenever `check` starts to refuse (or read differently) a line
# it accepted before, so no row's stored hash vouches for a line the new checks have not seen.
LINE_HASH_VERSION = b"registrar-sis-1"


def line_hash(raw: bytes) -> int:
    """A line's bytes (without its line break) as a signed 64-bit integer, the form a row keeps
    (enrollments.sis_line_hash). BLAKE2b: a whole unchanged refresh of 1M lines (read, hash,
    look up, every line) took 4.5 s on PostgreSQL, 7.4 s on SQLite (2026-12-02, bench/
    refresh_bench.py), against 30-40 s to parse and check them. 64 bits: the
    chance that a changed line in a million-line extract hashes like some stored line is about
    1e6 * 1e6 / 2**64, 5e-8 a refresh; the extract comes from the SIS, not from an adversary."""
    return int.from_bytes(
        hashlib.blake2b(raw, digest_size=8, person=LINE_HASH_VERSION).digest(), "big", signed=True
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
