"""Reading reference codes: small tables, read whole (no paging needed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registrar.core.clock import iso_z
from registrar.core.problems import bad_request, not_found
from registrar.reference.load import MODELS
from registrar.reference.models import Origin, PetitionType, School

MAX_ID_LENGTH = 16
WHAT = {"petition_types": "petition type", "origins": "origin", "schools": "school"}


def represent(code: PetitionType | Origin | School) -> dict[str, Any]:
    return {
        "id": code.id,
        "name": code.name,
        "is_active": code.is_active,
        "cache_date": iso_z(code.cache_date),
    }


def _active_filter(raw: str | None) -> bool | None:
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise bad_request("A filter value is not valid.", ["is_active: expected true or false"])
    return lowered == "true"


async def list_codes(
    session: AsyncSession, table: str, is_active: str | None
) -> list[dict[str, Any]]:
    model: Any = MODELS[table]
    query = select(model).order_by(model.id)
    active = _active_filter(is_active)
    if active is not None:
        query = query.where(model.is_active.is_(active))
    return [represent(c) for c in (await session.scalars(query)).all()]


async def get_code(session: AsyncSession, table: str, code_id: str) -> dict[str, Any]:
    model: Any = MODELS[table]
    found = None
    if len(code_id) <= MAX_ID_LENGTH and code_id.isprintable():
        found = await session.get(model, code_id)
    if found is None:
        raise not_found(WHAT[table])
    return represent(found)
