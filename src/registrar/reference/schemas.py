"""The reference code representation: petition types, origins and schools."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class CodeOut(BaseModel):
    id: str = Field(examples=["Q14"])
    name: str = Field(examples=["Additional 2-Course Load"])
    is_active: bool = Field(
        description="Inactive codes stay readable; new petitions cannot use them"
    )
    cache_date: dt.datetime = Field(
        description="When the code was last loaded", examples=["2024-11-20T20:54:26Z"]
    )
