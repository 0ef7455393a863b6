"""One line of a SIS extract (sis/records.py) on its own: a good line becomes a named staging row,
and each kind of bad line is one `line N: ...` problem naming the key."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from registrar.core.text import ECHO_LIMIT
from registrar.sis.records import LineError, check, parse_line
from tests.support.extracts import line


def test_a_good_line_becomes_a_named_row() -> None:
    record = check(line("f001abc"), 7)
    row = record.row
    assert row.line == 7 and row.netid == "f001abc" and row.role == "student"
    assert row.id == "AAAS.010.01-202001-U-10188-f001abc-student"
    assert row.course_submit_date == dt.datetime(2020, 3, 5, 17, 53, 46, tzinfo=dt.UTC)
    assert row.course_opt_out_date is None
    assert row.credit_hours_earned == 1.0 and isinstance(row.credit_hours_earned, float)
    assert record.section.id == "AAAS.010.01-202001-U-10188"
    assert record.term.sis_term_code == "202001"
    assert record.confidential is False
    assert check(line("f001abc", confidential=True), 1).confidential is True


def _problem(obj: Any) -> str:
    with pytest.raises(LineError) as raised:
        check(obj, 3)
    assert str(raised.value).startswith("line 3: ")
    return raised.value.problem


def test_each_bad_line_is_one_problem_naming_the_key() -> None:
    good = line("f001abc")
    assert (
        _problem([good])
        == "the line must be a JSON object, got " + orjson.dumps([good]).decode()[:61] + "..."
    )
    assert _problem({k: v for k, v in good.items() if k != "role"}) == "missing key(s): role"
    assert _problem({**good, "extra": 1}) == 'unknown key(s): "extra"'
    assert _problem({**good, "netid": "x" * 65}).startswith("netid is longer than 64 characters")
    assert _problem({**good, "is_active": "yes"}) == 'is_active must be true or false, got "yes"'
    assert _problem({**good, "credit_hours_earned": True}).startswith("credit_hours_earned must be")
    assert _problem({**good, "id": "x"}).startswith("id must be {section.id}-{netid}-{role}")
    bad_date = {
        **good,
        "course_assessment": {"submit_date": "2020-02-30T00:00:00Z", "opt_out_date": None},
    }
    assert _problem(bad_date).startswith("course_assessment.submit_date must be an ISO 8601 UTC")
    both = {"submit_date": "2020-03-05T17:53:46Z", "opt_out_date": "2020-03-05T17:53:46+00:00"}
    assert _problem({**good, "course_assessment": both}) == (
        "course_assessment: at most one of submit_date and opt_out_date may be set"
    )
    assert _problem({**good, "section": {"id": "s"}}).startswith("section: missing key(s)")


def test_echoed_values_are_short_and_escaped() -> None:
    problem = _problem({**line("f001abc"), "role": 20 * ["a\nb"]})
    echoed = problem.removeprefix("role must be a string, got ")
    assert len(echoed) == ECHO_LIMIT and echoed.endswith("...") and "\n" not in echoed


def test_raw_lines() -> None:
    assert parse_line(b'{"a": 1}', 1) == {"a": 1}
    with pytest.raises(LineError, match="line 2: not valid JSON"):
        parse_line(b'{"a": ', 2)
    with pytest.raises(LineError, match="line 4: not valid UTF-8"):
        parse_line(b'{"a": "\xff"}', 4)
