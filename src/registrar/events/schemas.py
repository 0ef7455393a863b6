"""The CloudEvent as the feed shows it (spec 7), for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class CloudEvent(BaseModel):
    """CloudEvents 1.0, JSON format."""

    specversion: Literal["1.0"]
    id: str = Field(description="Unique per event, the same for every reader (opaque)")
    source: str = Field(examples=["/api/academic/enrollments"])
    type: Literal[
        "enrollment.created",
        "enrollment.updated",
        "enrollment.deleted",
        "petition.created",
        "task.completed",
    ]
    time: str = Field(
        description="When the change committed (RFC 3339, UTC)",
        examples=["2026-12-02T10:31:05.123456Z"],
    )
    subject: str = Field(description="The resource's id")
    origin: Literal["sis", "api"] = Field(
        description="`sis`: a load or refresh; `api`: a task applied for a client"
    )
    data: dict[str, Any] = Field(
        description="The resource as it is now, as the reader may see it, with `changed` on "
        "updates; `{id}` when it is gone; the task record on task.completed"
    )
