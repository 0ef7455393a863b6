"""Every kind of task the service runs, (resource, action) -> its handler: listed here, only here.

A worker runs what this table names (and claims only those resources), so a `registrar worker`
process knows every task an API process can queue. To add a task type: write its handler in the
domain's `jobs.py` (tasks/handlers.py says what a handler must be), add a line here, and queue it
from a route with `tasks.router.accept_write(..., resource=..., action=...)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from registrar.enrollments import jobs as enrollment_jobs
from registrar.enrollments import service as enrollments
from registrar.petitions import jobs as petition_jobs
from registrar.petitions import service as petitions
from registrar.tasks.handlers import Handler

HANDLERS: Mapping[tuple[str, str], Handler] = {
    (enrollments.RESOURCE, "PATCH"): enrollment_jobs.apply_course_assessment,
    (petitions.RESOURCE, petitions.ACTION): petition_jobs.create_petition,
}
