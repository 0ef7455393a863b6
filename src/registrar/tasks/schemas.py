"""The task representation (seeds 000 and 003) and the 202 body."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Requester(BaseModel):
    """The claims of the token that made the request."""

    sub: str | None
    name: str | None
    email: str | None
    scope: str | None = Field(description="Granted scopes, comma separated, as in the token")
    exp: str | None = Field(
        description="The token's expiry, Unix seconds as a decimal string (as seed 003)",
        pattern=r"^[0-9]+$",
        examples=["1732141853"],
    )
    iat: str | None = Field(
        description="When the token was issued, Unix seconds as a decimal string",
        pattern=r"^[0-9]+$",
        examples=["1732131053"],
    )


class TaskOut(BaseModel):
    id: str = Field(
        description="24 lowercase hex characters", examples=["630cf2e78b1c6c251cfbc125"]
    )
    resource: str = Field(examples=["academic.enrollments"])
    action: str = Field(examples=["PATCH"])
    resource_id: str | None
    payload: Any
    requester: Requester
    status: Literal["accepted", "complete", "error"]
    request_date: str = Field(
        description="When the request was accepted: YYYY-MM-DDTHH:MM:SSZ",
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
        examples=["2024-11-20T20:54:26Z"],
    )
    completed_date: str | None = Field(
        description="When it ended, always with six fractional digits: "
        "YYYY-MM-DDTHH:MM:SS.ffffffZ; null while accepted",
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$",
        examples=["2024-11-20T20:54:27.328833Z"],
    )
    path: str | None = Field(
        description="Absolute URL of the resource changed (complete) or called (error); "
        "null while accepted"
    )
    worker_data: dict[str, Any]
    message: str | None


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"


# How every write documents its 202 (see tasks.service.accepted_response).
ACCEPTED_RESPONSE: dict[str, Any] = {
    "description": "Accepted: poll the task named in Location.",
    "headers": {
        "Location": {"description": "/api/tasks/{id}", "schema": {"type": "string"}},
        "Retry-After": {
            "description": "Seconds before the first poll",
            "schema": {"type": "integer"},
        },
    },
}

# `Prefer: wait=S` (RFC 7240) on a write, and the 200 it may bring (tasks/router.py accept_write).
PREFER_WAIT_PARAMETER: dict[str, Any] = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "`wait=S` (at most 60): answer 200 with the finished task if it finishes "
    "within S seconds, else the usual 202.",
    "schema": {"type": "string"},
    "example": "wait=10",
}
FINISHED_RESPONSE: dict[str, Any] = {
    "description": "With `Prefer: wait=S`: the task finished within S seconds (`complete` or "
    "`error`).",
    "headers": {
        "Preference-Applied": {"description": "`wait=S`", "schema": {"type": "string"}},
        "Location": {"description": "/api/tasks/{id}", "schema": {"type": "string"}},
    },
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskOut"}}},
}

# The problems every write can answer besides 401/403 (which follow from its security): a bad
# payload, a body that stalls or is too large, not JSON, an Idempotency-Key reused for another body.
WRITE_PROBLEMS = (400, 408, 413, 415, 422)
