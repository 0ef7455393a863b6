"""The scheduled SIS refresh: reload REGISTRAR_SIS_EXTRACT, with --replace semantics, whenever the
file changed since the last refresh; once per change however many workers look, never two at once,
all or nothing.

The workers' schedule (tasks/registry.py) queues one `sis.refresh` task per slot of
REGISTRAR_SIS_REFRESH_SECONDS; each looks at the file and, under a lock, at the newest attempt in
`sis_refreshes` (sis/repository.py: begin_refresh):

- "Changed" means the path, size or modification time (to the nanosecond) differs from the file
  the newest attempt saw: one `stat`, 4 us. A content hash would read the whole file every slot
  (bench/extract_change_bench.py, a 1,000,000-line extract of 426 MiB: SHA-256
  0.34 s, BLAKE2b 0.82 s, from the page cache) and would be wrong besides: a file written again
  with the same content is a newer extract, whose modification time is when the SIS was read
  (`--as-of`).
- A new change is recorded as a `running` attempt held by the task's attempt (one running at
  most), then loaded by `sis.service.load_records` (one transaction), whose last statement, in
  that same transaction, marks the attempt `ok` with the load's counts. So the load and the record
  that it happened commit together: a worker killed mid-load commits neither, its task's lease
  expires and the task runs again ("resume"), and a worker killed after the commit but before the
  task's end finds, when the task runs again, that the file is already loaded. Only the task's
  current attempt may close the record, so a worker that lost its lease while it still loaded
  (hung past it) cannot commit over the attempt that took the task over: its load rolls back.
- A bad extract (a bad line, an unreadable file) rolls the load back and marks the attempt
  `failed` with the load's message: the task ends `error` at once, not retried; the next change
  of the file is tried again. Any other failure (the database away) is retried as tasks are.
- The file must not change while it is read: if it did, the load rolls back and the task retries
  with the new file. Producers should write a new file and rename it over the old one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from registrar.core.clock import iso_z, utcnow
from registrar.core.settings import Settings
from registrar.db.database import Database
from registrar.db.engine import create_database
from registrar.sis import repository as repo
from registrar.sis.extract import ExtractReader, open_extract
from registrar.sis.records import LineError
from registrar.sis.service import LoadFailed, LoadResult, file_time, load_records
from registrar.tasks import repository as tasks_repo

RESOURCE = "sis.refresh"
# OSErrors that are the database's, not the extract's (a connection refused or timed out: asyncpg
# raises them unwrapped); a bad file is not retried, these are.
TRANSIENT = (ConnectionError, TimeoutError, socket.gaierror)


class RefreshFailed(Exception):
    """The extract cannot be loaded as it is (the load's message): not worth retrying."""


class RefreshInterrupted(Exception):
    """The refresh was rolled back for a reason that passes (the file changed under it, another
    attempt took it over): the task is retried."""


@dataclass(frozen=True)
class SeenFile:
    """An extract file as one `stat` sees it; size and mtime -1 when it cannot be read."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def look(cls, path: Path) -> SeenFile:
        try:
            st = os.stat(path)
        except OSError:
            return cls(str(path), -1, -1)
        return cls(str(path), st.st_size, st.st_mtime_ns)

    @property
    def modified(self) -> dt.datetime | None:
        if self.mtime_ns < 0:
            return None
        return dt.datetime.fromtimestamp(self.mtime_ns / 1e9, dt.UTC)


async def refresh(
    db: Database, settings: Settings, *, task_id: str, attempt: int, worker_id: str
) -> str:
    """Refresh from the configured extract if it changed: the task's message. Raises
    RefreshFailed for a bad extract (nothing changed), RefreshInterrupted or a database error to
    be retried."""
    path = settings.sis_extract
    if path is None:
        return "No extract is configured (REGISTRAR_SIS_EXTRACT); nothing to do."
    seen = SeenFile.look(path)
    decision, row = await db.write(
        repo.begin_refresh,
        task_id=task_id,
        attempt=attempt,
        extract=seen.path,
        size=seen.size,
        mtime_ns=seen.mtime_ns,
        now=utcnow(),
    )
    assert row is not None
    if decision == "busy":
        return f"The refresh of task {row.task_id} is under way; nothing to do."
    if decision == "unchanged":
        return (
            f"{seen.path} is unchanged since the refresh of {iso_z(row.started_at)} "
            f"({row.status}); nothing to do."
        )
    # Closes this attempt if this task's attempt still holds it (True), in the caller's transaction.
    end = functools.partial(
        repo.end_refresh, refresh_id=int(row.id), task_id=task_id, attempt=attempt
    )

    async def record(conn: AsyncConnection, result: LoadResult) -> None:
        """The load's last statement, in its transaction: the attempt ends `ok`."""
        if stopping.is_set():
            raise RefreshInterrupted("the worker is stopping; the refresh rolled back")
        if SeenFile.look(path) != seen:
            raise RefreshInterrupted(f"{seen.path} changed while it was loaded; loading it again")
        counts = {
            "lines": result.lines,
            "inserted": result.inserted,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "removed": result.removed,
            "kept": result.kept,
        }
        if not await conn.run_sync(end, now=utcnow(), status=repo.OK, counts=counts):
            raise RefreshInterrupted("another attempt holds the refresh now; this one rolled back")
        # SQLite: the task's lease, renewed in the load's own transaction. The load holds the
        # write lock from its applying phase (from its start when it cannot stage first:
        # sis/service.py) to its commit, so the worker's heartbeat cannot renew it meanwhile: a load
        # longer than the lease (the tests' 60,000-line refresh against their 2 s lease) ended
        # with the lease lapsed, and the first writer after the commit (this worker's claim, or
        # another worker's) claimed the task a third time, a run that found the file loaded and
        # could finish the task in place of this one (3 runs of 3). Renewed here, the lease is
        # fresh when the load becomes visible, and no other writer can come in between. Not on
        # PostgreSQL: the heartbeat is not held up there, and the load waiting on the task's row
        # (which the heartbeat may hold while it waits on a batch that waits on this load's
        # API-write lock) could deadlock.
        if conn.dialect.name == "sqlite":
            renewed = await conn.run_sync(
                tasks_repo.renew_lease,
                task_id,
                worker_id=worker_id,
                attempt=attempt,
                lease_seconds=float(settings.task_lease_seconds),
            )
            if not renewed:
                raise RefreshInterrupted("the task was claimed again; this attempt rolled back")

    stopping = threading.Event()
    try:
        result = await _load_apart(settings, path, record, stopping)
    except (LineError, LoadFailed, OSError) as exc:
        if isinstance(exc, TRANSIENT):
            raise  # the load's database connection, not the file: retried as tasks are
        reason = (
            f"cannot read {seen.path}: {exc.strerror or exc}"
            if isinstance(exc, OSError)
            else str(exc)
        )
        message = f"{reason}; nothing was loaded"
        await db.write(end, now=utcnow(), status=repo.FAILED, message=message)
        raise RefreshFailed(message) from None
    return f"Refreshed from {seen.path}: {result.summary()}."


async def _load_apart(
    settings: Settings,
    path: Path,
    before_commit: Callable[[AsyncConnection, LoadResult], Awaitable[None]],
    stopping: threading.Event,
) -> LoadResult:
    """`load_records(path, replace=True)` on a thread with an event loop and a database of its
    own: the load parses the file on its event loop between batches (seconds for a large
    extract), which on the worker's loop would stall its heartbeat past the lease (the task would
    be claimed again mid-load) and, under `registrar serve`, the API's requests. Cancelled (the
    worker stopping), it rolls back at its next batch and this returns once it has."""

    def on_batch(_lines: int) -> None:
        if stopping.is_set():
            raise RefreshInterrupted("the worker is stopping; the refresh rolled back")

    async def load() -> LoadResult:
        # One writer and one reader connection: a load needs no more.
        lean = settings.model_copy(
            update={"db_pool_size": 1, "db_max_overflow": 0, "read_cache_entries": 0}
        )
        db = create_database(lean)
        try:
            with open_extract(path) as handle:
                # Taken from the SIS when the file was written, as `registrar load` assumes: API
                # writes made since then are newer than the extract and kept (result.kept).
                return await load_records(
                    db,
                    ExtractReader(handle),
                    replace=True,
                    as_of=file_time(path),
                    source=str(path),
                    on_batch=on_batch,
                    before_commit=before_commit,
                )
        finally:
            await db.dispose()

    running = asyncio.ensure_future(asyncio.to_thread(asyncio.run, load()))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        stopping.set()
        await asyncio.gather(running, return_exceptions=True)
        raise


@dataclass(frozen=True)
class RefreshStatus:
    """What `registrar sis status`, /metrics and /health say about refreshes."""

    last: Row[Any] | None  # the newest attempt
    last_ok: Row[Any] | None  # the newest success
    failures: int  # failed attempts, ever

    def success_age(self, now: dt.datetime | None = None) -> float | None:
        if self.last_ok is None or self.last_ok.finished_at is None:
            return None
        finished: dt.datetime = self.last_ok.finished_at
        return ((now or utcnow()) - finished).total_seconds()


async def refresh_status(db: Database) -> RefreshStatus:
    last, last_ok, failures = await db.read(repo.refresh_figures)
    return RefreshStatus(last, last_ok, failures)
