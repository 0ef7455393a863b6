"""Petition reads: the representation, one petition, and the caller's collections."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from starlette.datastructures import URL

from registrar.auth.tokens import Client
from registrar.core.clock import iso_z
from registrar.core.problems import not_found
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.paging.pages import Page, find_page
from registrar.petitions import repository

PETITION_ID = re.compile(r"[0-9a-f]{24}")


def represent(p: Row[Any]) -> dict[str, Any]:
    return {
        "id": p.id,
        "netid": p.netid,
        "petition_code": p.petition_code,
        "petition_name": p.petition_name,
        "origin_code": p.origin_code,
        "origin_name": p.origin_name,
        "school": p.school,
        "decision": p.decision,
        "grade_term": p.grade_term,
        "effective_date": iso_z(p.effective_date),
        "cache_date": iso_z(p.cache_date),
    }


async def get_petition(db: Database, petition_id: str, client: Client) -> dict[str, Any]:
    found = None
    if PETITION_ID.fullmatch(petition_id):
        found = await db.read_cached(repository.visible_petition, petition_id, client.sees_private)
    if found is None:
        raise not_found("petition")
    return represent(found)


def literal(value: str) -> str:
    """A filter value matching exactly `value` (escapes the filter grammar's special characters)."""
    escaped = "".join("\\" + ch if ch in "\\*," else ch for ch in value)
    return "\\" + escaped if escaped[:1] in ("<", ">", "!") else escaped


def student_filter(netid: str) -> tuple[str, str]:
    """GET /api/students/{netid}/petitions: netids are matched as given or lower-cased."""
    spellings = dict.fromkeys([netid, netid.lower()])
    return ("netid", ",".join(literal(n) for n in spellings))


async def list_petitions(
    db: Database,
    client: Client,
    params: Sequence[tuple[str, str]],
    *,
    settings: Settings,
    secret: bytes,
    url: URL,
    fixed_filters: Sequence[tuple[str, str]] = (),
) -> tuple[list[dict[str, Any]], Page]:
    page = await find_page(
        db,
        repository.collection_spec(),
        client,
        params,
        rows=repository.petition_rows(),
        settings=settings,
        secret=secret,
        url=url,
        fixed_filters=fixed_filters,
    )
    return [represent(r) for r in page.rows], page
