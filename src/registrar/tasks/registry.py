"""Every kind of task the service runs, (resource, action) -> its handler, and the service's own
periodic jobs: listed here, only here.

A worker runs what this table names (and claims only those resources), so a `registrar worker`
process knows every task an API process can queue. To add a task type: write its handler in the
domain's `jobs.py` (tasks/handlers.py says what a handler must be), add a line here, and queue it
from a route with `tasks.router.accept_write(..., resource=..., action=...)`; a task a client
queues also names the scope it needs in REQUIRED_SCOPES. To add a periodic job: its handler under
(resource, "RUN") in HANDLERS (or OWN_TRANSACTION_JOBS), and a PeriodicJob in `periodic_jobs`.
"""

from __future__ import annotations

from collections.abc import Mapping

from registrar.auth.scopes import ENROLLMENTS_WRITE, PETITIONS_WRITE
from registrar.core.settings import Settings
from registrar.enrollments import jobs as enrollment_jobs
from registrar.enrollments import service as enrollments
from registrar.petitions import jobs as petition_jobs
from registrar.petitions import service as petitions
from registrar.sis import jobs as sis_jobs
from registrar.tasks import jobs as task_jobs
from registrar.tasks.handlers import Handler, OwnTransactionJob
from registrar.tasks.periodic import ACTION as PERIODIC
from registrar.tasks.periodic import PeriodicJob

HANDLERS: Mapping[tuple[str, str], Handler] = {
    (enrollments.RESOURCE, "PATCH"): enrollment_jobs.apply_course_assessment,
    (petitions.RESOURCE, petitions.ACTION): petition_jobs.create_petition,
    (task_jobs.PRUNE, PERIODIC): task_jobs.prune,
}

# Jobs that keep their own transactions (tasks/handlers.py: OwnTransactionJob).
OWN_TRANSACTION_JOBS: Mapping[tuple[str, str], OwnTransactionJob] = {
    (sis_jobs.REFRESH, PERIODIC): sis_jobs.refresh,
}


def periodic_jobs(settings: Settings) -> list[PeriodicJob]:
    """The service's schedule (tasks/periodic.py): what every worker queues, slot by slot."""
    jobs = [
        PeriodicJob(
            task_jobs.PRUNE,
            task_jobs.PRUNE_EVERY_SECONDS,
            {
                "retention_days": settings.task_retention_days,
                "event_retention_days": settings.event_retention_days,
            },
        )
    ]
    if settings.sis_extract is not None:
        jobs.append(PeriodicJob(sis_jobs.REFRESH, settings.sis_refresh_seconds))
    return jobs


# The scope a client's task needs when it runs, as its route needed it when it was queued: the
# worker refuses (ends `error`) a task whose requester's account was revoked or no longer holds
# it (tasks/worker.py). A task type not listed here was queued by the service itself (a
# scheduled job) and has no requester to check.
REQUIRED_SCOPES: Mapping[tuple[str, str], str] = {
    (enrollments.RESOURCE, "PATCH"): ENROLLMENTS_WRITE,
    (petitions.RESOURCE, petitions.ACTION): PETITIONS_WRITE,
}
