"""A failed task's message (tasks.handlers.task_message): seed 000's look whatever the values."""

from __future__ import annotations

from registrar.tasks.handlers import PermanentTaskError, task_message


def test_single_quotes_whatever_a_problem_holds() -> None:
    assert task_message(["Unknown netid: o'brien."]) == "['Unknown netid: o\\'brien.']"
    assert task_message(['say "hi"', "back\\slash"]) == "['say \"hi\"', 'back\\\\slash']"


def test_like_a_python_list_when_no_quote_is_involved() -> None:
    problems = ["Missing attribute: school.", "Unknown petition_code: Q99.", "tab\there", "é ✓"]
    assert task_message(problems) == str(problems)
    assert task_message([]) == "[]"


def test_a_permanent_error_carries_the_message() -> None:
    assert PermanentTaskError(["a'b"]).message == "['a\\'b']"
