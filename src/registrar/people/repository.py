"""Looking people up, under the FERPA rule (people/ferpa.py)."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from registrar.people import ferpa
from registrar.people.models import Person


def canonical_netids(connection: Connection, netids: list[str], *, private: bool) -> dict[str, str]:
    """Map each given netid (lower-cased) to the people table's spelling, if the requester may
    see that person (the FERPA rule, people/ferpa.py: a hidden person is exactly an unknown one,
    and costs the same to look for). Exact and lower-case spellings hit the primary key; only a
    miss falls back to a case-insensitive scan."""
    visible = ferpa.person_visible(private)
    wanted = {n.lower() for n in netids}
    candidates = set(netids) | wanted
    rows = list(
        connection.scalars(select(Person.netid).where(Person.netid.in_(candidates), *visible))
    )
    missing = wanted - {netid.lower() for netid in rows}
    if missing:
        rows += connection.scalars(
            select(Person.netid)
            .where(func.lower(Person.netid).in_(missing), *visible)
            .order_by(Person.netid)
        )
    found: dict[str, str] = {}
    for netid in rows:
        # Prefer the exact spelling the caller gave, then the first in order.
        key = netid.lower()
        if key not in found or netid in netids:
            found[key] = netid
    return found
