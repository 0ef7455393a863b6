"""Every attribute of the petition representation, as a filter (no sensitive ones)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from registrar.paging.filters import Field
from registrar.petitions.models import Petition
from registrar.reference.models import Origin, PetitionType


def _via_type(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return Petition.petition_code.in_(select(PetitionType.id).where(cond))


def _via_origin(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    return Petition.origin_code.in_(select(Origin.id).where(cond))


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("id", Petition.id, selective=True),
        Field("netid", Petition.netid, selective=True),
        Field("petition_code", Petition.petition_code),
        Field("petition_name", PetitionType.name, lift=_via_type),
        Field("origin_code", Petition.origin_code),
        Field("origin_name", Origin.name, lift=_via_origin),
        Field("school", Petition.school),
        Field("decision", Petition.decision),
        Field("grade_term", Petition.grade_term),
        Field("effective_date", Petition.effective_date, "datetime"),
        Field("cache_date", Petition.cache_date, "datetime"),
    )
}
