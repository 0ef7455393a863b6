"""Records: attribute access over the JSON the API answers, with nothing lost.

Why not pydantic: a model here must keep every key the server sends (the server may add keys;
the client must not break or drop them), give the raw JSON back unchanged, and cost nothing on a
100,000-record page walk. A thin read-only view over the decoded dict does all three: nested
objects are wrapped when they are read, never validated or copied. The classes below declare
the keys of the contract's representations so that type checkers and editors know them; any
other key is still there (`record.new_key`, `record["new_key"]`, typed `Any`).

A key that is absent raises AttributeError (and KeyError with `[]`): the API leaves keys out on
purpose (an enrollment's sensitive keys without the `read.sensitive` scope), and absent is not
null. Use `record.get("final_grade")` or `"final_grade" in record` where a key may be absent.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

__all__ = [
    "CourseAssessment",
    "Delivery",
    "Enrollment",
    "Event",
    "Petition",
    "Record",
    "Requester",
    "Section",
    "TaskRecord",
    "Term",
    "Webhook",
]


class _Key:
    """The attribute of a declared key: one dictionary lookup, no failed lookup first (a
    declared key read through __getattr__ costs a failed attribute search and an exception;
    this is about three times faster, which a 100,000-record walk notices)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, record: Record | None, owner: type[Record]) -> Any:
        if record is None:
            return self
        try:
            value = record._data[self.name]
        except KeyError:
            raise AttributeError(self.name) from None  # __getattr__ then says it properly
        kind = type(value)
        if kind is dict or kind is list:
            return record._wrap(self.name, value)
        return value


class Record(Mapping[str, Any]):
    """A read-only view of one JSON object: `record.key`, `record["key"]`, `record.raw`."""

    __slots__ = ("_data",)
    # Key -> the Record class its object value is wrapped in (others get plain Record).
    _nested: ClassVar[dict[str, type[Record]]] = {}

    _data: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in inspect.get_annotations(cls):  # this class's own, unevaluated
            if not name.startswith("_") and name not in cls.__dict__:
                setattr(cls, name, _Key(name))

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data if isinstance(data, dict) else dict(data)

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object exactly as the server sent it (do not modify it)."""
        return self._data

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the JSON object, safe to modify."""
        return _copy(self._data)  # type: ignore[no-any-return]

    def _wrap(self, key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return self._nested.get(key, Record)(value)
        if isinstance(value, list):
            cls = self._nested.get(key, Record)
            return [cls(v) if isinstance(v, dict) else v for v in value]
        return value

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails. Private and dunder names are never keys (copy,
        # pickle and friends probe for them before _data exists).
        if name[:1] == "_":
            raise AttributeError(name)
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no key {name!r} (absent in this answer: "
                f"use .get({name!r}) where a key may be left out)"
            ) from None
        kind = type(value)
        if kind is dict or kind is list:
            return self._wrap(name, value)
        return value  # the common case, kept short: paging reads millions of these

    def __getitem__(self, key: str) -> Any:
        return self._wrap(key, self._data[key])

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def __dir__(self) -> list[str]:
        keys = [k for k in self._data if k.isidentifier()]
        return sorted(set(super().__dir__()) | set(keys))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._data,))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class Section(Record):
    __slots__ = ()
    id: str
    lms_section_id: str | None
    sis_section_id: str | None


class Term(Record):
    __slots__ = ()
    id: str
    lms_term_id: str | None
    sis_ptrm_code: str | None
    sis_term_code: str | None


class CourseAssessment(Record):
    __slots__ = ()
    submit_date: str | None
    opt_out_date: str | None


class Enrollment(Record):
    """An enrollment (seed 002). `final_grade`, `credit_hours_earned` and `course_assessment`
    are present only for a token with `api:academic:enrollments:read.sensitive`."""

    __slots__ = ()
    _nested: ClassVar[dict[str, type[Record]]] = {
        "section": Section,
        "term": Term,
        "course_assessment": CourseAssessment,
    }
    cache_date: str
    id: str
    is_active: bool
    is_in_session: bool
    netid: str
    role: str
    school_id: str | None
    section: Section
    term: Term
    final_grade: str | None
    credit_hours_earned: int | float | None
    course_assessment: CourseAssessment | None


class Petition(Record):
    """A student petition (the portal's petitions GET page)."""

    __slots__ = ()
    id: str
    netid: str
    petition_code: str
    petition_name: str | None
    origin_code: str
    origin_name: str | None
    school: str
    decision: str | None
    grade_term: str
    effective_date: str | None
    cache_date: str | None


class Requester(Record):
    """The claims of the token that made a task's request (`exp`/`iat` as the server sends
    them: the contract says decimal strings; numbers are accepted too)."""

    __slots__ = ()
    sub: str
    name: str | None
    email: str | None
    scope: str | None
    exp: str | int | None
    iat: str | int | None


class TaskRecord(Record):
    """A task (seeds 000 and 003): `status` is `accepted`, then `complete` or `error`.

    A task a write has just returned holds what the 202 says (`id`, `status`, `path`,
    `message`, as seed 000's incomplete sample); `refresh()` or `wait()` fetch the whole record.
    """

    __slots__ = ()
    _nested: ClassVar[dict[str, type[Record]]] = {"requester": Requester}
    id: str
    resource: str
    action: str
    resource_id: str | None
    payload: Any
    requester: Requester
    status: str
    request_date: str
    completed_date: str | None
    path: str | None
    worker_data: Any
    message: str | None


class Event(Record):
    """A CloudEvents 1.0 event from the feed or a webhook. `data` is the resource as the reader
    may see it (plus `changed` on updates, `{id}` on deletes, the task on `task.completed`)."""

    __slots__ = ()
    specversion: str
    id: str
    source: str
    type: str
    time: str
    subject: str | None
    origin: str | None
    data: Record


class Webhook(Record):
    """A webhook subscription. `secret` is present only in the answer that created it."""

    __slots__ = ()
    id: str
    url: str
    types: list[str]
    created: str
    status: str
    failing_since: str | None
    disabled_at: str | None
    secret: str


class Delivery(Record):
    """One delivery attempt of an event to a webhook (newest first in the listing): `id` is the
    delivery's (its `webhook-id`, the same on every attempt), `event` the event's id."""

    __slots__ = ()
    id: str
    event: str
    attempt: int
    time: str
    status_code: int | None
    error: str | None
    duration_ms: float
