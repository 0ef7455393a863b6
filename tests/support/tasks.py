"""Writes and the tasks they queue, as a client sees them."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}


def patch_body(submit: str | None = None, opt_out: str | None = None) -> dict[str, Any]:
    """A PATCH body setting course_assessment."""
    return {"course_assessment": {"submit_date": submit, "opt_out_date": opt_out}}


def wait_task(
    api: TestClient, location: str, headers: dict[str, str], timeout: float = 15.0
) -> dict[str, Any]:
    """Poll a task as a client would, until it is no longer `accepted`."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(location, headers=headers)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        if task["status"] != "accepted":
            return task
        assert time.monotonic() < deadline, f"task still accepted: {task}"
        time.sleep(0.02)
