"""The filter grammar (paging/filters.py) on its own, without HTTP: what each form of value matches,
run against a small table in an in-memory SQLite database, and every way a value is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
)

from registrar.core.problems import ProblemError
from registrar.paging.filters import MAX_FILTERS, MAX_LIST_ITEMS, Field, literal, parse_filters

SECRET = "api:secret"
things = Table(
    "things",
    MetaData(),
    Column("pk", Integer, primary_key=True),
    Column("name", String),
    Column("n", Integer),
    Column("x", Float),
    Column("ok", Boolean),
    Column("at", DateTime),
    Column("hidden", String),
)
FIELDS = {
    f.name: f
    for f in (
        Field("name", things.c.name),
        Field("n", things.c.n, "int"),
        Field("x", things.c.x, "float"),
        Field("ok", things.c.ok, "bool"),
        Field("at", things.c.at, "datetime"),
        Field("hidden", things.c.hidden, scope=SECRET),
    )
}
ROWS = [
    {"pk": 1, "name": "alpha", "n": 1, "x": 1.5, "ok": True, "at": dt.datetime(2020, 3, 5, 17)},
    {"pk": 2, "name": "beta", "n": 2, "x": 2.5, "ok": False, "at": dt.datetime(2021, 1, 1)},
    {"pk": 3, "name": "Alphabet", "n": 3, "x": None, "ok": True, "at": None},
    {"pk": 4, "name": "a%_b", "n": 4, "x": 4.0, "ok": False, "at": None},
    {"pk": 5, "name": "<a*b,c\\", "n": 5, "x": 5.0, "ok": True, "at": None},
    {"pk": 6, "name": None, "n": 6, "x": 6.0, "ok": True, "at": None, "hidden": "h"},
]


@pytest.fixture(scope="module")
def connection() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        # As the service sets it: LIKE is case-sensitive, as on PostgreSQL.
        connection.exec_driver_sql("PRAGMA case_sensitive_like=ON")
        things.create(connection)
        connection.execute(insert(things), [{"hidden": None, **row} for row in ROWS])
        yield connection


def matching(
    connection: Connection, *params: tuple[str, str], scopes: frozenset[str] = frozenset()
) -> list[int]:
    parsed = parse_filters(params, FIELDS, scopes, ("page", "pagesize"))
    query = select(things.c.pk).where(*parsed.conditions).order_by(things.c.pk)
    return list(connection.scalars(query))


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("alpha", [1]),
        ("alpha,beta", [1, 2]),
        ("!alpha", [2, 3, 4, 5, 6]),  # a null is not equal to alpha: it stays
        ("!alpha,null", [2, 3, 4, 5]),
        ("null", [6]),
        ("!null", [1, 2, 3, 4, 5]),
        ("alpha*", [1]),  # case-sensitive
        ("*bet", [3]),
        ("*", [1, 2, 3, 4, 5]),
        ("a%_b", [4]),  # % and _ are ordinary characters
        ("a%*", [4]),
        ("a_*", []),
        ("\\<a\\*b\\,c\\\\", [5]),  # escapes make every special character literal
        ("<b", [1, 3, 4, 5]),
        (">=beta", [2]),
    ],
)
def test_text_values(connection: Connection, value: str, expect: list[int]) -> None:
    assert matching(connection, ("name", value)) == expect


@pytest.mark.parametrize(
    ("name", "value", "expect"),
    [
        ("n", "3", [3]),
        ("n", "<3", [1, 2]),
        ("n", "<=3", [1, 2, 3]),
        ("n", ">4", [5, 6]),
        ("n", "!1,2,3", [4, 5, 6]),
        ("x", "2.5", [2]),
        ("x", ">=4", [4, 5, 6]),
        ("x", "null", [3]),
        ("ok", "true", [1, 3, 5, 6]),
        ("ok", "FALSE", [2, 4]),
        ("at", "2020-03-05T17:00:00Z", [1]),
        ("at", ">2020-06-01T00:00:00+00:00", [2]),
    ],
)
def test_typed_values(connection: Connection, name: str, value: str, expect: list[int]) -> None:
    assert matching(connection, (name, value)) == expect


def test_the_same_attribute_twice_is_a_range(connection: Connection) -> None:
    assert matching(connection, ("n", ">1"), ("n", "<5")) == [2, 3, 4]


def test_literal_matches_exactly_the_value_given(connection: Connection) -> None:
    for value in ("<a*b,c\\", "a%_b", "alpha"):
        pk = next(r["pk"] for r in ROWS if r["name"] == value)
        assert matching(connection, ("name", literal(value))) == [pk]


def test_unknown_and_unseen_attributes_are_ignored_alike() -> None:
    parsed = parse_filters(
        [("nope", "1"), ("hidden", "h"), ("page", "2"), ("nope", "2")],
        FIELDS,
        frozenset(),
        ("page",),
    )
    assert parsed.conditions == [] and parsed.applied == []
    assert parsed.ignored == ["nope", "hidden"]


def test_a_scoped_attribute_filters_for_a_caller_with_the_scope(connection: Connection) -> None:
    assert matching(connection, ("hidden", "h"), scopes=frozenset({SECRET})) == [6]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ok", "yes", "ok: expected true or false"),
        ("n", "one", "n: expected a number"),
        ("x", "nan", "x: expected a number"),
        ("n", str(2**60), "n: number out of range"),
        ("n", "1*", "n: wildcards apply to text only"),
        ("at", "yesterday", "at: expected an ISO 8601 date-time such as 2020-03-05T17:53:46Z"),
        ("name", "<a,b", "name: < takes one value"),
        ("name", ">a*", "name: > does not take a wildcard"),
        ("name", "a\x00", "name: NUL is not allowed"),
        ("name", "a" * 1025, "name: at most 1024"),
        ("name", ",".join(["a"] * (MAX_LIST_ITEMS + 1)), f"name: at most {MAX_LIST_ITEMS} values"),
    ],
)
def test_bad_values_are_400_naming_the_problem(name: str, value: str, problem: str) -> None:
    with pytest.raises(ProblemError) as raised:
        parse_filters([(name, value)], FIELDS, frozenset(), ())
    assert raised.value.status == 400
    assert raised.value.errors == [problem]


def test_too_many_filters() -> None:
    with pytest.raises(ProblemError) as raised:
        parse_filters([("n", str(i)) for i in range(MAX_FILTERS + 1)], FIELDS, frozenset(), ())
    assert raised.value.errors == [f"at most {MAX_FILTERS} filter parameters"]
