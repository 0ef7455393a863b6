"""Collections: filter, count, page and name the found set, the same way for every resource.

`find_page` returns data (`Page`); the HTTP layer writes its headers (http/responses.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, bindparam, func, select

from registrar.auth.client import Client
from registrar.core.problems import bad_request
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.db.prepared import PreparedRead
from registrar.paging import found_sets
from registrar.paging.filters import Field, FilterLimits, ParsedFilters, parse_filters

RESERVED = ("page", "pagesize", "continuation_key", "cursor")


@dataclass(frozen=True)
class CollectionSpec:
    """What a resource's collection is: its rows' stable key, its fields, who sees which rows."""

    resource: str
    key: Any  # the integer surrogate key column: the order of every found set
    table: Any  # the collection's own table (for counts)
    fields: dict[str, Field]
    visibility: Callable[[Client], list[ColumnElement[bool]]]
    # The same rule seen from the other side: the rows the caller may not see (None: it sees
    # all). Used for counting.
    hidden: Callable[[Client], ColumnElement[bool] | None]


@dataclass
class Page:
    """One page of a found set, and what a client needs to go on: the found set's key and size,
    where the next page starts (None on the last), the parameters that were ignored."""

    rows: list[Row[Any]]
    total: int
    page: int
    pagesize: int
    continuation_key: str
    ignored: list[str]
    next_cursor: str | None  # opaque (paging/found_sets.py)


def _one_int(
    params: Sequence[tuple[str, str]], name: str, default: int, low: int, high: int
) -> int:
    values = [v for n, v in params if n == name]
    if not values:
        return default
    if len(values) > 1:
        raise bad_request(f"`{name}` was given more than once.", [f"{name}: give it once"])
    text = values[0].strip()
    # ASCII digits only: `isdigit()` also accepts `²` (which `int()` refuses) and `int()` also
    # reads `٣`; a number on the query string is written in 0-9.
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise bad_request(f"`{name}` is not valid.", [f"{name}: expected a whole number"])
    number = int(text)
    if not low <= number <= high:
        raise bad_request(f"`{name}` is out of range.", [f"{name}: from {low} to {high}"])
    return number


def _one_str(params: Sequence[tuple[str, str]], name: str) -> str | None:
    values = [v for n, v in params if n == name]
    if len(values) > 1:
        raise bad_request(f"`{name}` was given more than once.", [f"{name}: give it once"])
    return values[0] if values else None


@dataclass(frozen=True)
class PageQuery:
    """A request for a page of a collection: its query string's parameters, the paging settings,
    and the key found sets are signed with."""

    params: Sequence[tuple[str, str]]
    settings: Settings
    secret: bytes
    # The raw query string's length (bounded by FilterLimits.query_string_bytes).
    query_bytes: int = 0


async def find_page(
    db: Database,
    spec: CollectionSpec,
    client: Client,
    query: PageQuery,
    *,
    rows: Select[Any],
    fixed_filters: Sequence[tuple[str, str]] = (),
) -> Page:
    """One page of the caller's view of a collection.

    `rows` selects what the representation needs (joins included); conditions are added here.
    `fixed_filters` are part of the route (e.g. a student's petitions) and of the found set.
    """
    params, settings, secret = query.params, query.settings, query.secret
    limits = FilterLimits.of(settings)
    limits.check_query_string(query.query_bytes)
    pagesize = _one_int(params, "pagesize", settings.page_size_default, 1, settings.page_size_max)
    page = _one_int(params, "page", 1, 1, settings.page_max)
    key = _one_str(params, "continuation_key")
    cursor_text = _one_str(params, "cursor")

    if key is not None:
        found = found_sets.decode(
            key, secret, resource=spec.resource, sub=client.sub, scopes=client.scopes
        )
        cursor = None if cursor_text is None else found_sets.decode_cursor(cursor_text, key, secret)
        # The found set's own filters; anything else on the query string is ignored.
        parsed = parse_filters(found.filters, spec.fields, client.scopes, RESERVED, limits)
        ignored = [n for n, _ in params if n not in RESERVED]
        ignored += [n for n in parsed.ignored if n not in ignored]
    else:
        if cursor_text is not None:
            raise bad_request("`cursor` needs a continuation_key.", ["cursor: page a found set"])
        cursor = None
        wanted = list(fixed_filters) + [(n, v) for n, v in params if n not in RESERVED]
        parsed = parse_filters(wanted, spec.fields, client.scopes, RESERVED, limits)
        ignored = parsed.ignored
        found = None

    # Visibility (FERPA) is applied on every page with the *current* token's scopes. Selective
    # reads and wide ones run on lanes of their own (Database.read_wide: issue 9 item 1).
    if found is not None:
        keys = _keys(spec, parsed.conditions, client, pagesize, page, cursor)
        read = db.read if parsed.selective else db.read_wide
        result = await read(_read_page, spec, keys, rows, found.snapshot)
    else:
        if parsed.selective:
            newest, total, result = await _new_selective_set(
                db, spec, client, parsed, rows, (page, pagesize)
            )
        else:
            keys = _keys(spec, parsed.conditions, client, pagesize, page, None)
            newest, total, result = await _new_wide_set(db, spec, client, parsed, keys, rows)
        found = found_sets.FoundSet(
            resource=spec.resource,
            sub=client.sub,
            filters=parsed.applied,
            snapshot=newest,
            total=total,
            expires=int(time.time()) + settings.found_set_ttl_seconds,
        )
        key = found_sets.encode(found, secret, client.scopes)
    assert key is not None

    more = len(result) > pagesize
    result = result[:pagesize]

    next_cursor = None
    if more and result:
        next_cursor = found_sets.encode_cursor(int(getattr(result[-1], spec.key.key)), key, secret)
    return Page(
        rows=result,
        total=found.total,
        page=page,
        pagesize=pagesize,
        continuation_key=key,
        ignored=ignored,
        next_cursor=next_cursor,
    )


async def _new_wide_set(
    db: Database,
    spec: CollectionSpec,
    client: Client,
    parsed: ParsedFilters,
    keys: Select[Any],
    rows: Select[Any],
) -> tuple[int, int, list[Row[Any]]]:
    """A new found set of a wide filter: (snapshot, visible count, first page's rows).

    The snapshot and the count of matching rows in one statement: the same moment. The visible
    count is "matching" minus "matching and hidden" (see people/ferpa.py for why); the second
    count runs at the same time on another connection (a wide filter's counts are most of its
    cost), bounded by a snapshot of its own that must agree. On the wide lane (Database.read_wide).
    """
    figures = select(select(func.max(spec.key)).scalar_subquery(), _count(spec, parsed.conditions))
    page_read = db.read_wide(_read_new_page, spec, figures, keys, rows)
    hidden = spec.hidden(client)
    if hidden is None:
        (newest, matching), result = await page_read
        return newest, matching, result
    hidden_conditions = [*parsed.conditions, hidden]
    ((newest, matching), result), hidden_row = await asyncio.gather(
        page_read, db.read_wide(_count_hidden, spec, hidden_conditions, None)
    )
    if hidden_row[0] != newest:
        # Rows arrived between the two counts: count the hidden ones up to our snapshot.
        hidden_row = await db.read_wide(_count_hidden, spec, hidden_conditions, newest)
    return newest, matching - hidden_row[1], result


async def _new_selective_set(
    db: Database,
    spec: CollectionSpec,
    client: Client,
    parsed: ParsedFilters,
    rows: Select[Any],
    window: tuple[int, int],
) -> tuple[int, int, list[Row[Any]]]:
    """A new found set of a selective filter (an equality on an indexed key: a student's or a
    section's enrollments): (snapshot, visible count, first page's rows) from ONE statement.

    Its matching rows are few, so the count applies the FERPA rule row by row like the page
    does, in the same statement as the page and the snapshot (one moment, one hop, no second
    connection). Issue 9 item 9: the wide way (two counts on two connections, then the page)
    cost a `?netid=` page 4.7 ms of CPU for five rows. A page filtered by one equality alone
    (the common `?netid=`, `?section.id=`) runs a statement built once (`_SELECTIVE_PAGE`, a
    prepared read: one round trip on PostgreSQL). The rows are remembered like a point read
    (Database.read_cached, SQLite: until the next commit; an empty page never, so a hidden
    person's page and an unknown one's cost the same).
    """
    page, pagesize = window
    # Everything the statement depends on: the filters applied, the FERPA view, page and size.
    cache_key = (spec.resource, tuple(parsed.applied), client.sees_private, window)
    read: Callable[..., list[Row[Any]]]
    args: tuple[Any, ...]
    if parsed.key_value is not None and len(parsed.parts) == 1:
        field, value = parsed.key_value
        limit, offset = pagesize + 1, (page - 1) * pagesize
        read, args = _SELECTIVE_PAGE, (spec, rows, field, client, value, limit, offset)
    else:
        keys = _keys(spec, parsed.conditions, client, pagesize, page, None)
        read, args = _read_selective_page, (spec, parsed.conditions, client, keys, rows)
    counted = page > 1
    if not counted:
        # Page 1 without its count: when it holds every visible matching row (no more than
        # `pagesize`: a student's or a section's page, nearly always), the count is its length,
        # seen by the same statement, with the same rows hidden; the count's second walk of the
        # matching rows (and their FERPA probes) is skipped. Only a longer one is read again
        # with its count (one statement: rows and figures of one moment).
        uncounted = _SELECTIVE_ROWS if read is _SELECTIVE_PAGE else _read_selective_rows
        found = await db.read_cached(uncounted, *args, cache_key=cache_key)
        if found and len(found) <= pagesize:
            return int(found[0].found_newest or 0), len(found), found
        counted = bool(found)
    if counted:
        found = await db.read_cached(read, *args, cache_key=cache_key)
    if not found:
        # An empty page: the figures alone (a page past the end, or nothing to see).
        newest, total = await db.read(_read_figures, spec, parsed.conditions, client)
        return newest, total, []
    # Every row carries the figures the same statement saw.
    return int(found[0].found_newest or 0), int(found[0].found_total), found


def _keys(
    spec: CollectionSpec,
    conditions: list[ColumnElement[bool]],
    client: Client,
    pagesize: int,
    page: int,
    cursor: int | None,
) -> Select[Any]:
    """The keys of one page of the caller's view (one more than the page, to tell if more
    remain)."""
    keys = select(spec.key).where(*conditions, *spec.visibility(client))
    keys = keys.order_by(spec.key).limit(pagesize + 1)
    if cursor is not None:
        # Keyset: the Link header's way, as fast on page 500 as on page 1.
        return keys.where(spec.key > cursor)
    return keys.offset((page - 1) * pagesize) if page > 1 else keys


def _with_figures(
    spec: CollectionSpec, rows: Select[Any], visible: list[Any], *, counted: bool = True
) -> Select[Any]:
    """`rows` with the found set's figures on every row: the snapshot (the newest key) and, when
    `counted`, the count of the caller's matching rows, scalar subqueries the database evaluates
    once."""
    newest = select(func.max(spec.key)).scalar_subquery()
    if not counted:
        return rows.add_columns(newest.label("found_newest"))
    return rows.add_columns(
        newest.label("found_newest"), _count(spec, visible).label("found_total")
    )


# Statements for a page filtered by one equality, built once per (collection, field, FERPA view,
# representation): the value, limit and offset are bound parameters. A few dozen at most (kept
# under a bound all the same, should a caller build its representation per request).
_SELECTIVE_STATEMENTS: dict[tuple[str, str, bool, int, bool], tuple[Select[Any], Select[Any]]] = {}


def _selective_plan(
    spec: CollectionSpec,
    rows: Select[Any],
    field: Field,
    client: Client,
    value: Any,
    limit: int,
    offset: int,
    *,
    counted: bool = True,
) -> tuple[Select[Any], dict[str, Any]]:
    key = (spec.resource, field.name, client.sees_private, id(rows), counted)
    built = _SELECTIVE_STATEMENTS.get(key)
    if built is None or built[0] is not rows:
        # (The representation is the repository's statement built once; `rows` is kept beside
        # its own id so that a reused id can never find another's statement.)
        visible = [field.column == bindparam("key_value"), *spec.visibility(client)]
        # The rows straight from the equality's index, not through `_page`'s list of keys: a
        # few dozen rows, the joined tables probed once each (SQLite probed a section's row
        # once for all of its enrollments, where the key list probed it per row, and built and
        # read a list of keys). `_page` is for wide filters, whose joins could otherwise drive.
        statement = (
            _with_figures(spec, rows, visible, counted=counted)
            .where(*visible)
            .order_by(spec.key)
            .limit(bindparam("page_limit"))
            .offset(bindparam("page_offset"))
        )
        if len(_SELECTIVE_STATEMENTS) >= 256:
            _SELECTIVE_STATEMENTS.clear()
        built = _SELECTIVE_STATEMENTS[key] = (rows, statement)
    params = {"key_value": value, "page_limit": limit, "page_offset": offset}
    return built[1], params


def _selective_rows_plan(*args: Any) -> tuple[Select[Any], dict[str, Any]]:
    return _selective_plan(*args, counted=False)


_SELECTIVE_PAGE = PreparedRead(_selective_plan)
# The same page without its count (page 1: see _new_selective_set).
_SELECTIVE_ROWS = PreparedRead(_selective_rows_plan)


def _read_page(
    connection: Connection,
    spec: CollectionSpec,
    keys: Select[Any],
    rows: Select[Any],
    snapshot: int,
) -> list[Row[Any]]:
    """One page of a found set, up to its snapshot."""
    return list(connection.execute(_page(spec, keys.where(spec.key <= snapshot), rows)).all())


def _read_new_page(
    connection: Connection,
    spec: CollectionSpec,
    figures: Select[Any],
    keys: Select[Any],
    rows: Select[Any],
) -> tuple[tuple[int, int], list[Row[Any]]]:
    """A new found set's (snapshot, matching count) and its first page: one `Database.read`."""
    figures_row = connection.execute(figures).one()
    snapshot = int(figures_row[0] or 0)
    return (snapshot, int(figures_row[1])), _read_page(connection, spec, keys, rows, snapshot)


def _read_selective_page(
    connection: Connection,
    spec: CollectionSpec,
    conditions: list[ColumnElement[bool]],
    client: Client,
    keys: Select[Any],
    rows: Select[Any],
    counted: bool = True,
) -> list[Row[Any]]:
    """A selective page with its found set's figures on every row, in one statement."""
    visible = [*conditions, *spec.visibility(client)]
    statement = _page(spec, keys, _with_figures(spec, rows, visible, counted=counted))
    return list(connection.execute(statement).all())


def _read_selective_rows(
    connection: Connection,
    spec: CollectionSpec,
    conditions: list[ColumnElement[bool]],
    client: Client,
    keys: Select[Any],
    rows: Select[Any],
) -> list[Row[Any]]:
    """`_read_selective_page` without the count (page 1: see _new_selective_set); a function
    of its own, as the read's identity keys the statement cache."""
    return _read_selective_page(connection, spec, conditions, client, keys, rows, counted=False)


def _read_figures(
    connection: Connection,
    spec: CollectionSpec,
    conditions: list[ColumnElement[bool]],
    client: Client,
) -> tuple[int, int]:
    """(snapshot, visible count) of a found set whose page is empty."""
    newest = select(func.max(spec.key)).scalar_subquery()
    visible = [*conditions, *spec.visibility(client)]
    row = connection.execute(select(newest, _count(spec, visible))).one()
    return int(row[0] or 0), int(row[1])


def _page(spec: CollectionSpec, keys: Select[Any], rows: Select[Any]) -> Select[Any]:
    # The page's keys first, on the collection's table alone; the joins for the representation
    # then touch only those rows. (Joined in one query, SQLite may loop over a small joined
    # table first and sort the whole collection to find the first page.)
    return rows.where(spec.key.in_(keys.scalar_subquery())).order_by(spec.key)


def _count_hidden(
    connection: Connection,
    spec: CollectionSpec,
    conditions: list[ColumnElement[bool]],
    snapshot: int | None,
) -> tuple[int, int]:
    """(snapshot, count of rows matching `conditions` up to it): at `snapshot`, or at the newest
    row now (one statement, so the two agree)."""
    if snapshot is None:
        newest = select(func.max(spec.key)).scalar_subquery()
        row = connection.execute(select(newest, _count(spec, conditions))).one()
        return int(row[0] or 0), int(row[1])
    return snapshot, int(
        connection.scalar(select(_count(spec, [*conditions, spec.key <= snapshot]))) or 0
    )


def _count(spec: CollectionSpec, conditions: Sequence[ColumnElement[bool]]) -> Any:
    return select(func.count()).select_from(spec.table).where(*conditions).scalar_subquery()
