"""The petition representation (the portal's petitions GET page) and the POST body."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from registrar.petitions.service import GRADE_TERM, MAX_LENGTH, OPTIONAL, REQUIRED


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


# The POST body, as documented (the route reads it by hand: see petitions/router.py).
_FIELD_DOCS = {
    "netid": "The student's netid (a known person; case-insensitive).",
    "petition_code": "Banner event code of an active petition type (GET /api/petition_types).",
    "origin_code": "An active origin (GET /api/origins), e.g. UREG.",
    "school": "An active school (GET /api/schools), e.g. UG.",
    "grade_term": "Two digits, a term letter (F, W, S, X), optionally = and a letter: 24F, 24W=L.",
    "decision": "Free text, e.g. IDP 095 or 2023-2024.",
    "user_netid": "The netid of the staff member recording the petition (a known person).",
}
PETITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": list(REQUIRED),
    "properties": {
        key: {
            **(
                {"type": "string"}
                if key in REQUIRED
                else {"anyOf": [{"type": "string"}, {"type": "null"}]}
            ),
            "maxLength": MAX_LENGTH[key],
            "description": _FIELD_DOCS[key],
            **({"pattern": GRADE_TERM.pattern} if key == "grade_term" else {}),
        }
        for key in (*REQUIRED, *OPTIONAL)
    },
}
POST_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["petition"],
    "properties": {"petition": PETITION_SCHEMA},
}
POST_EXAMPLE = {
    "petition": {
        "netid": "f006kdf",
        "petition_code": "Q41",
        "origin_code": "UREG",
        "school": "UG",
        "decision": "IDP 095",
        "grade_term": "24F",
        "user_netid": "f006s0b",
    }
}
