"""Collections: filter, count, page and name the found set, the same way for every resource.

`find_page` returns data (`Page`); the HTTP layer writes its headers (http/responses.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, func, select

from registrar.auth.client import Client
from registrar.core.problems import bad_request
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.paging import found_sets
from registrar.paging.filters import Field, FilterLimits, parse_filters

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

    figures = None
    hidden = None
    if found is None:
        # The snapshot and the count of matching rows in one statement: the same moment. The
        # visible count is "matching" minus "matching and hidden" (see people/ferpa.py for why);
        # the second count runs at the same time on another connection (a wide filter's counts
        # are most of its cost), bounded by a snapshot of its own that must agree.
        hidden = spec.hidden(client)
        figures = select(
            select(func.max(spec.key)).scalar_subquery(), _count(spec, parsed.conditions)
        )
    # Visibility (FERPA) is applied on every page with the *current* token's scopes. A new
    # found set's page is bounded by the snapshot the same read takes.
    keys = select(spec.key).where(*parsed.conditions, *spec.visibility(client))
    keys = keys.order_by(spec.key).limit(pagesize + 1)
    if cursor is not None:
        # Keyset: the Link header's way, as fast on page 500 as on page 1.
        keys = keys.where(spec.key > cursor)
    elif page > 1:
        keys = keys.offset((page - 1) * pagesize)
    snapshot = None if found is None else found.snapshot
    # Selective reads and wide ones run on lanes of their own (Database.read_wide).
    read = db.read if parsed.selective else db.read_wide
    page_read = read(_read_page, spec, figures, keys, rows, snapshot)
    if hidden is None:
        figures_row, result = await page_read
        hidden_row: tuple[int, int] = (0, 0)
    else:
        (figures_row, result), hidden_row = await asyncio.gather(
            page_read, read(_count_hidden, spec, [*parsed.conditions, hidden], None)
        )
    if found is None:
        assert figures_row is not None
        newest, total_matching = int(figures_row[0] or 0), int(figures_row[1])
        if hidden is not None and hidden_row[0] != newest:
            # Rows arrived between the two counts: count the hidden ones up to our snapshot.
            hidden_row = await read(_count_hidden, spec, [*parsed.conditions, hidden], newest)
        found = found_sets.FoundSet(
            resource=spec.resource,
            sub=client.sub,
            filters=parsed.applied,
            snapshot=newest,
            total=total_matching - int(hidden_row[1]),
            expires=int(time.time()) + settings.found_set_ttl_seconds,
        )
        key = found_sets.encode(found, secret, client.scopes)
    assert key is not None

    more = len(result) > pagesize
    result = result[:pagesize]

    next_cursor = None
    if more and result:
        next_cursor = found_sets.encode_cursor(int(result[-1]._mapping[spec.key.key]), key, secret)
    return Page(
        rows=result,
        total=found.total,
        page=page,
        pagesize=pagesize,
        continuation_key=key,
        ignored=ignored,
        next_cursor=next_cursor,
    )


def _read_page(
    connection: Connection,
    spec: CollectionSpec,
    figures: Select[Any] | None,
    keys: Select[Any],
    rows: Select[Any],
    snapshot: int | None,
) -> tuple[Row[Any] | None, list[Row[Any]]]:
    """The found set's figures (a new one only) and one page of it: one `Database.read`."""
    figures_row = None
    if figures is not None:
        figures_row = connection.execute(figures).one()
        snapshot = int(figures_row[0] or 0)
    keys = keys.where(spec.key <= snapshot)
    # The page's keys first, on the collection's table alone; the joins for the representation
    # then touch only those rows. (Joined in one query, SQLite may loop over a small joined
    # table first and sort the whole collection to find the first page.)
    query = rows.where(spec.key.in_(keys.scalar_subquery())).order_by(spec.key)
    return figures_row, list(connection.execute(query).all())


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
