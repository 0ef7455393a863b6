"""The petition representation (the portal's petitions GET page) and the POST body."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class PetitionOut(BaseModel):
    id: str = Field(
        description="24 lowercase hex characters", examples=["673e4c83255f18cce280f5d7"]
    )
    netid: str = Field(examples=["f006kdf"])
    petition_code: str = Field(description="Banner event code", examples=["Q41"])
    petition_name: str = Field(examples=["Degree Requirement Exception"])
    origin_code: str = Field(examples=["UREG"])
    origin_name: str = Field(examples=["UG - Registrar"])
    school: str = Field(examples=["UG"])
    decision: str | None = Field(examples=["IDP 095"])
    grade_term: str | None = Field(examples=["24F"])
    effective_date: dt.datetime = Field(examples=["2024-11-20T20:54:27Z"])
    cache_date: dt.datetime = Field(examples=["2024-11-20T20:54:27Z"])
