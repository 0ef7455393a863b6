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
    exp: int | None
    iat: int | None


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
    request_date: str = Field(description="ISO 8601, UTC (Z)")
    completed_date: str | None = Field(description="ISO 8601, UTC (Z); null while accepted")
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
