"""The portal's filter grammar, turned into SQL conditions. Values are always bound, never spliced.

`?attr=value` on any attribute of a representation, dotted names for nested ones. A value may start
with an operator (`<`, `<=`, `>`, `>=`, `!`), may be a comma list ("any of"), may hold `*` wildcards
(strings only), and `null` matches null. A backslash makes the next `*`, `,`, `\\` or a leading
operator character literal. The same attribute twice ANDs. Attributes a caller may not see are
treated exactly like unknown ones: ignored, and named in `X-Ignored-Parameters`.

What one request may ask for is bounded (`FilterLimits`, from the REGISTRAR_FILTER_* settings):
terms per value and per request, wildcards per value and per request. Issue 9 item 1: 50 values of
160 OR-ed `*q00*` terms each made every row run 8,000 LIKEs, 7.3 s of CPU on 20,000 rows; with
at most 8 wildcards a request's LIKEs per row are at most 8. A condition that is an equality on a
`selective` field (an indexed key such as netid) makes the whole request selective: it reads a
few index entries whatever else it asks, and runs on the selective lane (db/read_lanes.py).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, not_, or_

from registrar.core.problems import bad_request

Kind = Literal["str", "bool", "int", "float", "datetime"]

MAX_VALUE_LENGTH = 1024
MAX_LIST_ITEMS = 500  # terms in one value, whatever the settings
MAX_FILTERS = 50
RANGE_OPERATORS = ("<=", ">=", "<", ">")
LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class Field:
    """A filterable attribute: its public name, the SQL it compares, who may see it."""

    name: str
    column: Any  # a ColumnElement on whatever table holds the value
    kind: Kind = "str"
    scope: str | None = None
    # Turns a condition on `column` into one on the collection's own rows (e.g. through a
    # lookup table: `term_id IN (SELECT id FROM terms WHERE ...)`). None: the column is local.
    lift: Callable[[ColumnElement[bool]], ColumnElement[bool]] | None = None
    # For an attribute that is an object (e.g. course_assessment): its "is null" condition;
    # only `null` and `!null` are meaningful filters on it.
    null_condition: ColumnElement[bool] | None = None
    # An indexed key whose one value names few rows (id, netid, section.id): an equality on it
    # makes a request selective (see the module's docstring).
    selective: bool = False


@dataclass(frozen=True)
class FilterLimits:
    """What one request's filters may hold (Settings' REGISTRAR_FILTER_* and query-string size:
    the one statement of the numbers; the README and the OpenAPI document quote them)."""

    terms_per_request: int
    wildcards_per_value: int
    wildcards_per_request: int
    query_string_bytes: int

    @classmethod
    def of(cls, settings: Any) -> FilterLimits:
        return cls(
            terms_per_request=settings.filter_terms_per_request,
            wildcards_per_value=settings.filter_wildcards_per_value,
            wildcards_per_request=settings.filter_wildcards_per_request,
            query_string_bytes=settings.query_string_max_bytes,
        )

    def check_query_string(self, size: int) -> None:
        if size > self.query_string_bytes:
            raise bad_request(
                "The query string is too long.",
                [f"query string: at most {self.query_string_bytes} bytes (query_string_max_bytes)"],
            )

    def describe(self) -> str:
        """The limits in words, for the OpenAPI document's parameter descriptions."""
        return (
            f"At most {MAX_LIST_ITEMS} comma terms per value and {self.terms_per_request} "
            f"per request; at most {self.wildcards_per_value} `*` per value and "
            f"{self.wildcards_per_request} per request; a value of at most {MAX_VALUE_LENGTH} "
            f"characters, a query string of at most {self.query_string_bytes} bytes. Past any: 400 "
            "naming the limit."
        )


@dataclass
class ParsedFilters:
    # Each filter's condition, or for a lone equality on a selective field the `_Equality` that
    # builds it when asked: the page that filter gets runs a statement built once (pages.py) and
    # needs no condition, and building `column == value` cost 0.45 of a `?netid=` page's 5.3 ms
    # in a profile (cProfile, PostgreSQL, 2026-12-02; SQLAlchemy's operator coercions).
    parts: list[ColumnElement[bool] | _Equality] = field(default_factory=list)
    applied: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    # An equality on a selective field among the conditions (db/read_lanes.py).
    selective: bool = False
    terms: int = 0
    wildcards: int = 0
    # The field and value of a condition that is one equality with one value on a selective
    # field of the collection's own table (`netid=f001abc`): paging/pages.py has a statement
    # built once for a page filtered by that alone.
    key_value: tuple[Field, Any] | None = None
    _built: list[ColumnElement[bool]] | None = None

    @property
    def conditions(self) -> list[ColumnElement[bool]]:
        """The filters as SQL conditions (built on first use)."""
        if self._built is None or len(self._built) != len(self.parts):
            self._built = [p.build() if isinstance(p, _Equality) else p for p in self.parts]
        return self._built


@dataclass(frozen=True)
class _Equality:
    """`column == value`, built only when a statement needs it."""

    column: Any
    value: Any

    def build(self) -> ColumnElement[bool]:
        return cast(ColumnElement[bool], self.column == self.value)


@dataclass(frozen=True)
class _Term:
    text: str
    wildcard: bool  # holds an unescaped `*`
    like: str  # the LIKE pattern (when wildcard)
    stars: int = 0  # how many unescaped `*`


def _split(raw: str) -> list[_Term]:
    """Split on unescaped commas, resolving escapes and noting unescaped wildcards."""
    terms: list[_Term] = []
    text: list[str] = []
    like: list[str] = []
    stars = 0
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            text.append(nxt)
            like.append(_like_literal(nxt))
            i += 2
            continue
        if ch == ",":
            terms.append(_Term("".join(text), stars > 0, "".join(like), stars))
            text, like, stars = [], [], 0
        elif ch == "*":
            stars += 1
            text.append("*")
            like.append("%")
        else:
            text.append(ch)
            like.append(_like_literal(ch))
        i += 1
    terms.append(_Term("".join(text), stars > 0, "".join(like), stars))
    return terms


def _like_literal(ch: str) -> str:
    return LIKE_ESCAPE + ch if ch in ("%", "_", LIKE_ESCAPE) else ch


def _split_operator(raw: str) -> tuple[str, str]:
    if raw.startswith("\\"):
        return "=", raw  # an escaped leading operator character is literal: _split resolves it
    for op in RANGE_OPERATORS:
        if raw.startswith(op):
            return op, raw[len(op) :]
    if raw.startswith("!"):
        return "!", raw[1:]
    return "=", raw


def _convert(f: Field, text: str) -> Any:
    if f.kind == "str":
        return text
    if f.kind == "bool":
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise bad_request("A filter value is not valid.", [f"{f.name}: expected true or false"])
    if f.kind in ("int", "float"):
        try:
            if not text.isascii():  # int() and float() also read `٣`: numbers are written in 0-9
                raise ValueError(text)
            number = int(text) if f.kind == "int" else float(text)
        except ValueError:
            raise bad_request(
                "A filter value is not valid.", [f"{f.name}: expected a number"]
            ) from None
        if isinstance(number, float) and not math.isfinite(number):
            raise bad_request("A filter value is not valid.", [f"{f.name}: expected a number"])
        if isinstance(number, int) and abs(number) > 2**53:
            raise bad_request("A filter value is not valid.", [f"{f.name}: number out of range"])
        return number
    # datetime
    try:
        if not text.isascii():
            raise ValueError(text)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            "A filter value is not valid.",
            [f"{f.name}: expected an ISO 8601 date-time such as 2020-03-05T17:53:46Z"],
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _condition(
    f: Field, raw: str, parsed: ParsedFilters, limits: FilterLimits | None
) -> ColumnElement[bool] | _Equality:
    """`raw` as a condition on `f`; counts its terms and wildcards into `parsed` (and refuses
    them past `limits`), and notes whether it makes the request selective."""
    if "\x00" in raw:
        raise bad_request("A filter value is not valid.", [f"{f.name}: NUL is not allowed"])
    if len(raw) > MAX_VALUE_LENGTH:
        raise bad_request("A filter value is too long.", [f"{f.name}: at most {MAX_VALUE_LENGTH}"])
    op, rest = _split_operator(raw)
    col = f.column

    if f.null_condition is not None:
        # An object-valued attribute: only null / !null mean anything.
        if rest.lower() != "null" or op not in ("=", "!"):
            raise bad_request(
                "A filter value is not valid.", [f"{f.name}: only null and !null are supported"]
            )
        cond = f.null_condition
        return cond if op == "=" else not_(cond)

    terms = _split(rest)
    _count_terms(f, terms, parsed, limits)

    if op in RANGE_OPERATORS:
        if len(terms) != 1:
            raise bad_request("A filter value is not valid.", [f"{f.name}: {op} takes one value"])
        term = terms[0]
        if f.kind == "bool":
            # `false < true` means nothing to a client, and SQLAlchemy refuses to build it.
            raise bad_request(
                "A filter value is not valid.", [f"{f.name}: {op} does not apply to true/false"]
            )
        if term.wildcard:
            raise bad_request(
                "A filter value is not valid.", [f"{f.name}: {op} does not take a wildcard"]
            )
        value = _convert(f, term.text)
        comparison = {"<": col < value, "<=": col <= value, ">": col > value, ">=": col >= value}
        return _lift(f, comparison[op])

    parts: list[ColumnElement[bool]] = []
    plain: list[Any] = []
    for term in terms:
        if term.text.lower() == "null" and not term.wildcard:
            parts.append(col.is_(None))
        elif term.wildcard:
            if f.kind != "str":
                raise bad_request(
                    "A filter value is not valid.", [f"{f.name}: wildcards apply to text only"]
                )
            parts.append(col.like(term.like, escape=LIKE_ESCAPE))
        else:
            plain.append(_convert(f, term.text))
    if op != "!" and f.selective and f.lift is None and len(terms) == 1 and len(plain) == 1:
        parsed.selective = True  # one equality: a few index entries
        parsed.key_value = (f, plain[0])
        return _Equality(col, plain[0])
    if plain:
        parts.append(col == plain[0] if len(plain) == 1 else col.in_(plain))
    matched = or_(*parts) if len(parts) > 1 else parts[0]
    if op != "!":
        if f.selective and len(plain) == len(terms):
            parsed.selective = True  # only equalities: a few index entries per term
            if len(plain) == 1 and f.lift is None:
                parsed.key_value = (f, plain[0])
        return _lift(f, matched)
    # "None of these": a null is not equal to any given value, so it stays in, unless the list
    # itself names null.
    if any(t.text.lower() == "null" and not t.wildcard for t in terms):
        return _lift(f, not_(matched))
    return _lift(f, or_(col.is_(None), not_(matched)))


def _count_terms(
    f: Field, terms: list[_Term], parsed: ParsedFilters, limits: FilterLimits | None
) -> None:
    stars = sum(t.stars for t in terms)
    parsed.terms += len(terms)
    parsed.wildcards += stars
    if len(terms) > MAX_LIST_ITEMS:
        raise bad_request("Too many values.", [f"{f.name}: at most {MAX_LIST_ITEMS} values"])
    if limits is None:
        return
    checks = (
        (parsed.terms, limits.terms_per_request, "at most {} filter terms per request"),
        (stars, limits.wildcards_per_value, f"{f.name}: at most {{}} wildcards (*) per value"),
        (parsed.wildcards, limits.wildcards_per_request, "at most {} wildcards (*) per request"),
    )
    for count, limit, words in checks:
        if count > limit:
            raise bad_request("The filters ask for too much work.", [words.format(limit)])


def _lift(f: Field, cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return f.lift(cond) if f.lift is not None else cond


def parse_filters(
    params: Iterable[tuple[str, str]],
    fields: dict[str, Field],
    scopes: frozenset[str],
    reserved: Sequence[str],
    limits: FilterLimits | None = None,
) -> ParsedFilters:
    """Turn query parameters into SQL conditions for the caller's view of the collection.

    `limits` bound the terms and wildcards (None: only the grammar's own caps, for code that
    replays filters it made itself)."""
    parsed = ParsedFilters()
    for name, raw in params:
        if name in reserved:
            continue
        f = fields.get(name)
        if f is None or (f.scope is not None and f.scope not in scopes):
            # Unknown and not-visible look the same, so a filter cannot reveal what is hidden.
            if name not in parsed.ignored:
                parsed.ignored.append(name)
            continue
        parsed.parts.append(_condition(f, raw, parsed, limits))
        parsed.applied.append((name, raw))
        if len(parsed.applied) > MAX_FILTERS:
            raise bad_request("Too many filters.", [f"at most {MAX_FILTERS} filter parameters"])
    return parsed


def literal(value: str) -> str:
    """A filter value matching exactly `value` (escapes the filter grammar's special characters)."""
    escaped = "".join("\\" + ch if ch in "\\*," else ch for ch in value)
    return "\\" + escaped if escaped[:1] in ("<", ">", "!") else escaped
