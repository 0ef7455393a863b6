"""Periodic jobs: a schedule declared in code (tasks/registry.py), one task per slot.

As Oban's cron plugin and River's periodic jobs do it: a job runs every `every` seconds, and time is
cut into slots of that length (slot n starts n * every seconds after the Unix epoch). At the start
of each slot every process that runs a worker (`registrar serve`, `registrar worker`) queues the
slot's task. The task's id is derived from (resource, action, slot) and the insert is
`INSERT ... ON CONFLICT DO NOTHING`, so however many processes do it, exactly one task exists per
slot. From there it is a task like any other: claimed with a lease, retried, finished `complete` or
`error`, counted by `registrar tasks stats` and /metrics, pruned after the retention period.

A slot missed while no process ran is not made up: the next slot's task does the work (a job must
be written so that running it once catches up). A process that starts mid-slot queues the current
slot's task (a no-op if another process already did).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from registrar.core.clock import iso_z, utcnow
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.tasks import repository as repo
from registrar.tasks.models import TaskStatus

log = logging.getLogger("registrar.worker")

# Who the service's own tasks name as their requester. No service account can read them over the
# API (only a task's own `sub` can, and `registrar clients create` refuses subs beginning
# "registrar.": auth/service.py): operators see them with `registrar tasks` and /metrics.
SCHEDULER = {"sub": "registrar.scheduler", "name": "registrar scheduler"}
ACTION = "RUN"
# The scheduler looks at the clock at least this often (a slot of 30 minutes still starts on time
# after the machine's clock was stepped or the process was suspended).
LONGEST_SLEEP_SECONDS = 60.0


@dataclass(frozen=True)
class PeriodicJob:
    """A job the service queues for itself every `every` seconds (its handler, registered under
    (resource, "RUN"), receives `payload`)."""

    resource: str  # "tasks.prune", "sis.refresh"
    every: float  # seconds, > 0
    payload: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def slot(self, now: float) -> int:
        return int(now // self.every)

    def slot_start(self, slot: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(slot * self.every, dt.UTC)

    def task_id(self, slot: int) -> str:
        """The slot's task id: the same in every process, a task id's shape (24 hex digits)."""
        key = f"{self.resource}/{ACTION}/{self.every!r}/{slot}"
        return hashlib.sha256(key.encode()).hexdigest()[:24]


def periodic_task(settings: Settings, job: PeriodicJob, slot: int) -> dict[str, Any]:
    """The slot's task row, as `repository.insert_periodic` writes it."""
    now = utcnow()
    base = (settings.public_url or "").rstrip("/")
    start = iso_z(job.slot_start(slot))
    return {
        "id": job.task_id(slot),
        "resource": job.resource,
        "action": ACTION,
        "resource_id": None,
        "payload": {"slot": start, **job.payload},
        "requester": dict(SCHEDULER),
        "sub": SCHEDULER["sub"],
        "private_scope": True,  # the service's own work sees every record
        "status": TaskStatus.ACCEPTED.value,
        "request_date": now,
        "worker_data": {},
        "base_url": base,
        "called_url": base,
        "attempts": 0,
        "max_attempts": settings.task_max_attempts,
        "run_at": now,
        # The worker logs the task under this, as it logs a client's task under its request's id.
        "correlation_id": f"{job.resource}@{start}",
    }


class Scheduler:
    """Queues each job's task at the start of each of its slots; one per worker."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        jobs: Sequence[PeriodicJob],
        *,
        queued: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.settings = settings
        self.jobs = list(jobs)
        self.queued = queued  # called after a commit that queued a task (wakes the worker)
        self.clock = clock
        self._done: dict[PeriodicJob, int] = {}  # the last slot queued, per job

    async def tick(self) -> float:
        """Queue every job whose slot has not been queued by this process; seconds to the next
        slot start."""
        now = self.clock()
        due = [job for job in self.jobs if self._done.get(job) != job.slot(now)]
        if due:
            rows = [periodic_task(self.settings, job, job.slot(now)) for job in due]
            try:
                new = await self.db.write(repo.insert_periodic, rows)
            except Exception as exc:
                # The next tick tries again; the database being away is reported elsewhere.
                log.warning("could not queue periodic tasks (%s)", type(exc).__name__)
                return 1.0
            for job in due:
                self._done[job] = job.slot(now)
            if new:
                self.queued()
        now = self.clock()
        following = min((job.slot(now) + 1) * job.every for job in self.jobs)
        return max(0.0, following - now)

    async def run(self) -> None:
        if not self.jobs:
            return
        while True:
            wait = await self.tick()
            await asyncio.sleep(min(LONGEST_SLEEP_SECONDS, wait + 0.001))
