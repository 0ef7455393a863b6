"""The FERPA rule, in one place: records of confidential people do not exist for a caller without
`urn:dartmouth:people:private`. Every resource keyed by a person applies it through these
functions (its repository passes its own `netid` column); a lookup of people themselves uses
`person_visible`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, select, text

from registrar.auth.client import Client
from registrar.people.models import Person

# Written as the bare column so that the partial index `... WHERE confidential` applies: on SQLite
# SQLAlchemy renders a boolean column as `confidential = 1`, which SQLite's planner does not match
# to that index, and it would scan every person instead.
_IS_CONFIDENTIAL = text("people.confidential")
_CONFIDENTIAL_NETIDS = select(Person.netid).where(_IS_CONFIDENTIAL)


def visible_to(client: Client, netid: Any) -> list[ColumnElement[bool]]:
    """Conditions a row must meet to exist for this caller (none when it sees everyone).

    A correlated NOT EXISTS: one index probe per row examined, the cheapest form for a lookup by
    id or a page of rows.
    """
    return visible_with(client.sees_private, netid)


def visible_with(sees_private: bool, netid: Any) -> list[ColumnElement[bool]]:
    """`visible_to` by the private scope alone: for statements built once, before any caller."""
    if sees_private:
        return []
    return [~exists().where(Person.netid == netid, Person.confidential)]


def hidden_from(client: Client, netid: Any) -> ColumnElement[bool] | None:
    """The rows this caller may not see, or None when it sees everyone.

    The same rule as `visible_to`, driven from the few confidential people: counting
    "matching" minus "matching and hidden" walks a few index entries per confidential person
    instead of probing once per matching row (a 400 ms count over a million rows becomes ~25 ms).
    """
    if client.sees_private:
        return None
    hidden: ColumnElement[bool] = netid.in_(_CONFIDENTIAL_NETIDS)
    return hidden


def person_visible(sees_private: bool) -> list[ColumnElement[bool]]:
    """The same rule for the people table itself: a confidential person does not exist."""
    return [] if sees_private else [Person.confidential.is_(False)]
