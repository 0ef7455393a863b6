"""The durable task worker: claims tasks with a lease, runs their handlers, finishes them.

One loop claims as many due tasks as there are free slots (one statement, see repository.claim) and
runs them as batches, each batch one `Database.write`: plain code on one connection, one hop and
one commit for many tasks (SQLite: one batch of up to 200 at a time; PostgreSQL: `concurrency`
batches of up to 100 at once). A batch handler (tasks/handlers.py) applies all the tasks of its
type in a batch with one statement per step, and the batch's tasks are finished with one more.
A handler's writes and the task's completion commit in ONE transaction guarded by
`locked_by = me`, so a SIGKILL at any instant either loses the whole attempt (the lease expires
and another worker reclaims the task) or commits all of it; never half, never twice. A heartbeat
extends the leases of running tasks; `stop()` stops claiming, lets in-flight tasks finish for a
grace period, then aborts the rest (rolled back) and releases them. A job that keeps its own
transactions (the SIS refresh) runs outside the batches (`run_job`).

Each worker also runs the scheduler of periodic jobs (tasks/periodic.py): task pruning and the SIS
refresh are tasks queued slot by slot, run like any other.

Wake-ups: enqueue pokes an in-process worker right after its commit; on PostgreSQL a dedicated
connection LISTENs for the NOTIFY that every enqueue sends, so workers in other processes start at
once too. Polling every `worker_poll_seconds` is only the fallback (and picks up retries whose
backoff has elapsed).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row

from registrar.auth import repository as accounts_repo
from registrar.auth.accounts import Grants
from registrar.auth.scopes import PEOPLE_PRIVATE
from registrar.core.clock import utcnow
from registrar.core.runtime import Runtime
from registrar.core.settings import Settings
from registrar.db.engine import asyncpg_dsn
from registrar.db.notices import listen
from registrar.events.record import Change, record
from registrar.tasks import repository as repo
from registrar.tasks.handlers import (
    BatchHandler,
    ClaimedTask,
    Handler,
    HandlerResult,
    OwnTransactionJob,
    PermanentTaskError,
    task_message,
)
from registrar.tasks.models import TaskStatus
from registrar.tasks.periodic import SCHEDULER, PeriodicJob, Scheduler
from registrar.tasks.queue import set_from_any_thread
from registrar.tasks.registry import (
    HANDLERS,
    OWN_TRANSACTION_JOBS,
    REQUIRED_SCOPES,
    periodic_jobs,
)
from registrar.webhooks.delivery import Deliverer

log = logging.getLogger("registrar.worker")

# Tasks per batch (one transaction). On PostgreSQL a batch of PATCHes costs about ten round trips
# whatever its size (bench/task_bench.py --postgres, a fresh database: one task per transaction,
# as before, 138 tasks/s and 5.3 ms of worker CPU per task; batches of 100, 3,434 and 0.19 ms).
SQLITE_BATCH = 200
POSTGRESQL_BATCH = 100


class Outcome(StrEnum):
    """How one run of a task ended, for this worker (and its tests)."""

    COMPLETE = "complete"  # finished, its changes committed
    ERROR = "error"  # finished in error (permanent, or out of attempts)
    RETRY = "retry"  # failed; queued again after a backoff
    LOST = "lost"  # another worker holds it now (a lease lost): this attempt rolled back
    ABORTED = "aborted"  # the worker stopped mid-batch: rolled back, released


# The outcomes that end a task (`complete` or `error`): recorded as task.completed, and announced.
FINISHED = (Outcome.COMPLETE, Outcome.ERROR)


@dataclass(frozen=True)
class Finished:
    """A task a batch ends: complete with its handler's result, or error with its problems."""

    task: ClaimedTask
    status: TaskStatus
    path: str | None
    message: str
    last_error: str | None = None
    # What the task changed (its handler's result), for the change record; none for an error.
    changes: tuple[Change, ...] = ()

    @classmethod
    def of(cls, task: ClaimedTask, result: HandlerResult | PermanentTaskError) -> Finished:
        if isinstance(result, PermanentTaskError):
            return cls.failed(task, result.message, result.message)
        return cls(task, TaskStatus.COMPLETE, result.path, result.message, None, result.changes)

    @classmethod
    def failed(cls, task: ClaimedTask, message: str, error: str) -> Finished:
        """Ended in error: its `path` is the URL that was called."""
        return cls(task, TaskStatus.ERROR, task.called_url, message, error)

    @property
    def outcome(self) -> Outcome:
        return Outcome.COMPLETE if self.status == TaskStatus.COMPLETE else Outcome.ERROR

    def row(self, worker_id: str) -> dict[str, Any]:
        """What repository.finish_many writes for it."""
        return {
            "task_id": self.task.id,
            "status": self.status,
            "path": self.path,
            "message": self.message,
            "worker_data": {"worker": worker_id, "attempts": self.task.attempts},
            "last_error": self.last_error,
        }


class LeaseLostError(Exception):
    """Another worker reclaimed the task while this one ran it: roll this attempt back."""


class BatchAbortedError(Exception):
    """The worker is stopping and the grace period is over: roll the batch back."""


def _about(task: ClaimedTask) -> dict[str, Any]:
    """What a log line about a task carries: the correlation id of the request that queued it
    (as `request_id`, the key the API's lines use), so one id finds the request and its task."""
    return {"request_id": task.correlation_id, "task_id": task.id}


def _log_outcome(task: ClaimedTask, outcome: Outcome, worker_id: str) -> None:
    """One line per task run, as the API writes one per request."""
    log.info(
        "task %s %s %s: %s",
        task.id,
        task.action,
        task.resource,
        outcome.value,
        extra={
            **_about(task),
            "resource": task.resource,
            "action": task.action,
            "outcome": outcome.value,
            "attempt": task.attempts,
            "worker": worker_id,
        },
    )


def _no_handler(task: ClaimedTask) -> PermanentTaskError:
    return PermanentTaskError([f"No handler for {task.action} {task.resource}."])


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        concurrency: int = 4,
        *,
        worker_id: str | None = None,
        retry_base_seconds: float = 2.0,
        shutdown_grace_seconds: float = 10.0,
        handlers: Mapping[tuple[str, str], Handler] = HANDLERS,
        required_scopes: Mapping[tuple[str, str], str] = REQUIRED_SCOPES,
        jobs: Mapping[tuple[str, str], OwnTransactionJob] = OWN_TRANSACTION_JOBS,
        schedule: Sequence[PeriodicJob] | None = None,
        deliver_webhooks: bool = True,
    ) -> None:
        self.runtime = runtime
        self.handlers = {
            (resource, action.upper()): fn for (resource, action), fn in handlers.items()
        }
        self.jobs = {(resource, action.upper()): fn for (resource, action), fn in jobs.items()}
        self.required_scopes = {
            (resource, action.upper()): scope
            for (resource, action), scope in required_scopes.items()
        }
        self.resources = sorted({resource for resource, _action in (*self.handlers, *self.jobs)})
        self.settings = runtime.settings
        # The periodic jobs this worker can run; the schedule is the service's (tasks/registry.py).
        runnable = [
            job
            for job in (periodic_jobs(self.settings) if schedule is None else schedule)
            if job.resource in self.resources
        ]
        self.scheduler = Scheduler(runtime.db, self.settings, runnable, queued=self.wake)
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_id or new_worker_id()
        self.retry_base_seconds = retry_base_seconds
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.lease_seconds = float(self.settings.task_lease_seconds)
        # Claimed tasks run in batches, each one transaction and one commit. SQLite runs one writer
        # at a time, so parallel batches would only queue on its lock: one batch. PostgreSQL runs
        # `concurrency` batches at once, so that one's Python overlaps another's round trips.
        sqlite = runtime.db.dialect == "sqlite"
        self.batch_size = SQLITE_BATCH if sqlite else POSTGRESQL_BATCH
        self.linger = self.settings.worker_batch_linger_ms / 1000 if sqlite else 0.0
        self.slots = self.batch_size if sqlite else self.batch_size * self.concurrency
        self._inflight: dict[str, asyncio.Task[dict[str, Outcome]]] = {}
        self._own_transactions: set[asyncio.Task[dict[str, Outcome]]] = set()
        # Set when the shutdown grace period is over: running batches roll back at their next
        # check (a batch on SQLite's writer thread cannot be cancelled from here).
        self._abort = threading.Event()
        self._background: list[asyncio.Task[None]] = []
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Webhook deliveries run beside the handlers, on the same queue (webhooks/delivery.py
        # says why not as handlers: no HTTP call inside a transaction).
        self.deliverer = Deliverer(runtime, self.worker_id) if deliver_webhooks else None

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self.runtime.queue.add_wakeup(self.wake)
        self._runner = asyncio.create_task(self._run(), name=f"worker {self.worker_id}")
        self._background = [
            asyncio.create_task(self._heartbeat_loop(), name="worker heartbeat"),
            asyncio.create_task(self.scheduler.run(), name="worker scheduler"),
        ]
        if self.runtime.db.dialect == "postgresql":
            self._background.append(asyncio.create_task(self._listen_loop(), name="worker listen"))
        if self.deliverer is not None:
            await self.deliverer.start()
        log.info("worker %s started (concurrency %d)", self.worker_id, self.concurrency)

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping = True
        self.runtime.queue.remove_wakeup(self.wake)
        self.wake()
        if self.deliverer is not None:
            await self.deliverer.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        running = list(self._inflight.items())
        if running:
            _done, pending = await asyncio.wait(
                {t for _i, t in running}, timeout=self.shutdown_grace_seconds
            )
            self._abort.set()
            for job in pending & self._own_transactions:
                job.cancel()  # its transaction rolls back; the task is released below
            outcomes: dict[str, Outcome] = {}
            for finished in await asyncio.gather(*pending, return_exceptions=True):
                if isinstance(finished, dict):
                    outcomes.update(finished)
            unfinished = [
                i for i, t in running if t in pending and outcomes.get(i) != Outcome.COMPLETE
            ]
            if unfinished:
                try:
                    await self.runtime.db.write(repo.release, unfinished, worker_id=self.worker_id)
                except Exception:
                    # The leases expire by themselves; another worker picks the tasks up then.
                    log.exception("could not release %d tasks at shutdown", len(unfinished))
        for bg in self._background:
            bg.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._runner = None
        log.info("worker %s stopped", self.worker_id)

    def wake(self) -> None:
        """Callable from any thread: look for due tasks now."""
        if self._wake_event is not None and self._loop is not None:
            set_from_any_thread(self._loop, self._wake_event)

    # --- claiming and running ---------------------------------------------------------------

    async def claim(self, limit: int) -> list[ClaimedTask]:
        resources = self.resources
        if limit <= 0 or not resources:
            return []
        return await self.runtime.db.write(
            repo.claim,
            worker_id=self.worker_id,
            limit=limit,
            lease_seconds=self.lease_seconds,
            resources=resources,
        )

    async def _run(self) -> None:
        assert self._wake_event is not None
        failures = 0
        while not self._stopping:
            # Clear before looking, so a wake-up that arrives during the claim is not lost.
            self._wake_event.clear()
            free = self.slots - len(self._inflight)
            claimed: list[ClaimedTask] = []
            if free > 0:
                try:
                    claimed = await self.claim(free)
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception("claiming tasks failed")
                    await asyncio.sleep(min(30.0, self.settings.worker_poll_seconds * 2**failures))
                    continue
            for task in [t for t in claimed if self._job(t) is not None]:
                self._spawn([task], self.run_job(task))
            batched = [t for t in claimed if self._job(t) is None]
            for first in range(0, len(batched), self.batch_size):
                self._spawn(batched[first : first + self.batch_size])
            if free > 0 and len(claimed) == free:
                continue  # probably more due: claim again as soon as a slot frees
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_event.wait(), self.settings.worker_poll_seconds)
            if self.linger > 0 and not self._stopping:
                # Under load, requests arrive a few at a time: let them gather into one batch.
                await asyncio.sleep(self.linger)

    def _spawn(
        self,
        tasks: list[ClaimedTask],
        job: Coroutine[Any, Any, dict[str, Outcome]] | None = None,
    ) -> None:
        runner = asyncio.create_task(
            self.run_batch(tasks) if job is None else job, name=f"tasks {tasks[0].id}..."
        )
        if job is not None:
            self._own_transactions.add(runner)
            runner.add_done_callback(self._own_transactions.discard)
        ids = [t.id for t in tasks]
        for task_id in ids:
            self._inflight[task_id] = runner

        def _done(_t: asyncio.Task[dict[str, Outcome]]) -> None:
            for task_id in ids:
                self._inflight.pop(task_id, None)
            if self._wake_event is not None:
                self._wake_event.set()  # slots are free

        runner.add_done_callback(_done)

    def _handler(self, task: ClaimedTask) -> Handler | None:
        return self.handlers.get((task.resource, task.action.upper()))

    def _job(self, task: ClaimedTask) -> OwnTransactionJob | None:
        return self.jobs.get((task.resource, task.action.upper()))

    async def run_job(self, claimed: ClaimedTask) -> dict[str, Outcome]:
        """Run a job that keeps its own transactions, then finish its task as a handler's is
        finished (`_run_isolated`: in a savepoint, complete, error, or a retry), under this
        worker's lease."""
        task = dataclasses.replace(claimed, started_at=utcnow())
        job = self._job(task)
        assert job is not None
        result: HandlerResult | None = None
        failure: Exception | None = None
        try:
            result = await job(self.runtime.db, self.settings, task)
        except Exception as exc:
            failure = exc

        def settle(_connection: Connection, _task: ClaimedTask) -> HandlerResult:
            if failure is not None:
                raise failure
            assert result is not None
            return result

        try:
            outcomes = await self.runtime.db.write(self._run_isolated, [task], settle)
        except BatchAbortedError:
            outcomes = {task.id: Outcome.ABORTED}
        except Exception:
            # The lease expires and the task runs again; the job knows it already ran.
            log.exception("task %s: its end could not be recorded", task.id, extra=_about(task))
            outcomes = {task.id: Outcome.RETRY}
        # Committed: wake this process's long-polls on the task, and on the feed (the job's own
        # changes, a load's, committed before; its task.completed now).
        self.runtime.notices.tasks_finished(i for i, o in outcomes.items() if o in FINISHED)
        self.runtime.notices.events_recorded()
        if log.isEnabledFor(logging.INFO):
            _log_outcome(task, outcomes[task.id], self.worker_id)
        return outcomes

    async def run_one(self, task: ClaimedTask) -> Outcome:
        """Run one claimed task to its end; returns complete, error, retry, lost or aborted."""
        return (await self.run_batch([task]))[task.id]

    async def run_batch(self, tasks: list[ClaimedTask]) -> dict[str, Outcome]:
        """Run claimed tasks in ONE transaction: one commit for many tasks.

        A task's handler writes and its completion commit together. First try: no savepoints
        (each costs two statements); a permanent error a batch handler returns (a PATCH of an
        enrollment that is gone) ends its task `error` right there, beside its neighbours. If a
        task raises, or lost its lease, that transaction is rolled back whole and the batch runs
        again at once with one SAVEPOINT per task, so a failing task rolls back alone and its
        retry or error is recorded in the same transaction as its neighbours' success.
        One commit per batch is what makes SQLite fast (one writer, and a commit costs more
        than the work); on PostgreSQL it turns some ten round trips per task into ten per batch.
        """
        outcomes = await self._run_batch(tasks)
        # Committed: wake the long-polls of this process waiting on these tasks or the feed.
        self.runtime.notices.tasks_finished(i for i, o in outcomes.items() if o in FINISHED)
        self.runtime.notices.events_recorded()
        if log.isEnabledFor(logging.INFO):
            for task in tasks:
                _log_outcome(task, outcomes[task.id], self.worker_id)
        return outcomes

    async def _run_batch(self, tasks: list[ClaimedTask]) -> dict[str, Outcome]:
        db = self.runtime.db
        try:
            return await db.write(self._run_plain, tasks)
        except BatchAbortedError:
            return {t.id: Outcome.ABORTED for t in tasks}
        except Exception as exc:
            # A task failed: run them again, isolated (handlers are idempotent).
            log.debug("batch of %d needs isolation: %s", len(tasks), type(exc).__name__)
        try:
            return await db.write(self._run_isolated, tasks)
        except BatchAbortedError:
            return {t.id: Outcome.ABORTED for t in tasks}
        except Exception:
            # The commit (or the database) failed: nothing of this batch happened. The leases
            # expire and the tasks run again; handlers are idempotent, so that is safe.
            log.exception("a batch of %d tasks failed to commit", len(tasks))
            return {t.id: Outcome.RETRY for t in tasks}

    def _check_abort(self) -> None:
        if self._abort.is_set():
            raise BatchAbortedError

    # --- the requester, as its account stands when the task runs -----------------------------

    def _requesters(self, connection: Connection, tasks: list[ClaimedTask]) -> dict[str, Row[Any]]:
        """The current grants of the accounts that asked for these tasks: one statement a batch,
        inside the batch's transaction (on SQLite under the write lock, so no revocation can
        commit between this check and the task's changes)."""
        subs = {t.sub for t in tasks if self._required_scope(t) is not None}
        return accounts_repo.grants_of(connection, subs) if subs else {}

    def _required_scope(self, task: ClaimedTask) -> str | None:
        return self.required_scopes.get((task.resource, task.action.upper()))

    def _as_requester_stands(
        self, task: ClaimedTask, requesters: dict[str, Row[Any]]
    ) -> ClaimedTask:
        """The task as its requester may run it now: PermanentTaskError if the account was revoked
        (after the token that queued it was issued, or since) or no longer holds the scope the
        write needs; FERPA visibility cut to what the account still holds."""
        needed = self._required_scope(task)
        if needed is None:
            return task
        row = requesters.get(task.sub)
        grants = Grants.from_row(row) if row is not None else None
        iat = task.requester.get("iat")
        if isinstance(iat, str) and iat.isdigit():
            iat = int(iat)
        if grants is None or grants.refuses(iat):
            raise PermanentTaskError(
                [
                    "The requester's service account was revoked before the task ran; "
                    "nothing was changed."
                ]
            )
        if needed not in grants.scopes:
            raise PermanentTaskError(
                [
                    f"The requester's service account no longer holds the scope {needed}; "
                    "nothing was changed."
                ]
            )
        if task.private_scope and PEOPLE_PRIVATE not in grants.scopes:
            return dataclasses.replace(task, private_scope=False)
        return task

    def _run_plain(self, connection: Connection, tasks: list[ClaimedTask]) -> dict[str, Outcome]:
        """The fast path: run every task and finish them all; raise on anything the batch cannot
        record without a savepoint (an exception, a plain handler's PermanentTaskError, a lost
        lease): the isolated run then records it. A batch handler's tasks are run together, and
        the errors it returns end beside their neighbours here."""
        requesters = self._requesters(connection, tasks)
        finished: list[Finished] = []
        groups: dict[Handler, list[ClaimedTask]] = {}
        for claimed in tasks:
            self._check_abort()
            task = dataclasses.replace(claimed, started_at=utcnow())
            handler = self._handler(task)
            try:
                if handler is None:
                    raise _no_handler(task)
                task = self._as_requester_stands(task, requesters)
            except PermanentTaskError as exc:
                finished.append(Finished.failed(task, exc.message, exc.message))
                continue
            groups.setdefault(handler, []).append(task)
        for handler, group in groups.items():
            self._check_abort()
            if isinstance(handler, BatchHandler):
                results = handler.run(connection, group)
                finished += [Finished.of(task, results[task.id]) for task in group]
            else:
                # A plain handler that raises may have written already: the isolated run, in
                # savepoints, records its error.
                finished += [Finished.of(task, handler(connection, task)) for task in group]
        self._check_abort()
        self._finish(connection, finished)
        return {f.task.id: f.outcome for f in finished}

    def _finish(self, connection: Connection, finished: list[Finished]) -> None:
        """End a batch's finished tasks (complete or error), in one statement, under this worker's
        lease. The one place where all the tasks a batch finishes are known, inside its
        transaction, just before its commit. LeaseLostError if one is no longer this worker's.

        Then record what the batch changed, LAST before the commit (the commit-order lock,
        events/record.py): one `record` with each completed task's changes and every finished
        client task's `task.completed` (its requester alone will see it); and one NOTIFY of the
        finished ids for the long-polls waiting on them."""
        rows = [f.row(self.worker_id) for f in finished]
        if len(repo.finish_many(connection, rows, worker_id=self.worker_id)) != len(rows):
            raise LeaseLostError
        changes: list[Change] = []
        for f in finished:
            changes += f.changes
            # The service's own periodic tasks have no requester who could read their
            # task.completed (tasks/periodic.py SCHEDULER): not recorded, one row a slot saved.
            if f.task.sub != SCHEDULER["sub"]:
                changes.append(Change("task.completed", f.task.id, "api", requester=f.task.sub))
        ids = [f.task.id for f in finished]
        notice = repo.finished_notice(ids)
        # PostgreSQL: the batch's NOTIFY goes in the change record's one statement when it fits
        # (and alone when nothing was recorded).
        if changes:
            record(connection, changes, notify=notice)
        if notice is None or not changes:
            repo.announce_finished(connection, ids)

    def _run_isolated(
        self, connection: Connection, tasks: list[ClaimedTask], handler: Handler | None = None
    ) -> dict[str, Outcome]:
        """Each task in a savepoint of its own, so one task's failure rolls back its writes alone
        and its retry or error is recorded in the same transaction as its neighbours' success.
        `handler`, if given, stands for the tasks' own (run_job: the result of a job that ran
        in its own transactions)."""
        requesters = self._requesters(connection, tasks)
        # Locked for the transaction on PostgreSQL: what is held now is still held at the finish.
        held = repo.hold(connection, [t.id for t in tasks], worker_id=self.worker_id)
        outcomes: dict[str, Outcome] = {}
        finished: list[Finished] = []
        for task in tasks:
            if task.id not in held:
                log.warning("task %s: lease lost, attempt rolled back", task.id, extra=_about(task))
                outcomes[task.id] = Outcome.LOST
                continue
            ended = self._run_in_savepoint(connection, task, requesters, handler)
            if isinstance(ended, Finished):
                finished.append(ended)
                outcomes[task.id] = ended.outcome
            else:
                outcomes[task.id] = ended
        self._check_abort()
        self._finish(connection, finished)
        return outcomes

    def _run_in_savepoint(
        self,
        connection: Connection,
        claimed: ClaimedTask,
        requesters: dict[str, Row[Any]],
        handler: Handler | None = None,
    ) -> Finished | Outcome:
        self._check_abort()
        task = dataclasses.replace(claimed, started_at=claimed.started_at or utcnow())
        handler = handler or self._handler(task)
        try:
            with connection.begin_nested():
                if handler is None:
                    raise _no_handler(task)
                task = self._as_requester_stands(task, requesters)
                return Finished.of(task, handler(connection, task))
        except PermanentTaskError as exc:
            return Finished.failed(task, exc.message, exc.message)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:4000]
            if task.attempts >= task.max_attempts:
                log.warning(
                    "task %s failed after %d attempts: %s",
                    task.id,
                    task.attempts,
                    error,
                    extra=_about(task),
                )
                message = task_message(
                    [f"The task failed after {task.attempts} attempts; try again later."]
                )
                return Finished.failed(task, message, error)
            delay = repo.backoff_seconds(task.attempts, self.retry_base_seconds)
            log.info(
                "task %s attempt %d failed (%s); retry in %.1fs",
                task.id,
                task.attempts,
                error,
                delay,
                extra=_about(task),
            )
            repo.schedule_retry(
                connection, task.id, worker_id=self.worker_id, delay=delay, error=error
            )
            return Outcome.RETRY

    # --- background loops -------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = max(0.5, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            ids = list(self._inflight)
            if not ids:
                continue
            try:
                await self.runtime.db.write(
                    repo.heartbeat, ids, worker_id=self.worker_id, lease_seconds=self.lease_seconds
                )
            except Exception:
                log.exception("heartbeat failed")

    async def _listen_loop(self) -> None:
        await listen(
            asyncpg_dsn(self.settings.database_url),
            {repo.NOTIFY_CHANNEL: lambda _payload: self.wake()},
            self.wake,  # catch up on anything queued while we were not listening
            "worker",
        )


def run_worker(settings: Settings, concurrency: int) -> None:
    """A worker process's life (`registrar worker`, on a migrated database): run until SIGTERM or
    SIGINT, then shut down cleanly."""

    async def _main() -> None:
        runtime = Runtime.build(settings)
        worker = Worker(runtime, concurrency=concurrency)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await worker.start()
            await stop.wait()
            log.info("signal received: finishing in-flight tasks")
        finally:
            await worker.stop()
            await runtime.close()

    asyncio.run(_main())
