"""Loading a SIS extract (JSON Lines, one enrollment per line), all or nothing.

How a load runs, in one write transaction (`Database.bulk()`, BEGIN IMMEDIATE on SQLite):

1. Stream the file, parse each line with orjson and validate it by hand (`records.check`); valid
   rows go in batches into a TEMP staging table (executemany on SQLite, COPY on PostgreSQL), so
   Python holds one batch at a time however long the extract is. People, sections and terms are
   few: they are collected in dicts on the way (which also catches a section or term described two
   ways in one extract).
2. Take the API write lock (PostgreSQL: tasks applying a PATCH wait for the load, and the load for
   those already applying) and the load's time, which becomes its records' cache_date.
3. Set-based SQL from the staging table: refuse duplicate ids, list what changes in `sis_diff`
   (keeping API writes newer than the extract: `as_of`), upsert people, terms and sections, delete
   what the extract lacks (`--replace`), write the changed rows, insert the new ones. An update
   keeps the row's integer `pk`, which orders found sets; new rows get theirs in extract order.
   Unchanged rows are not written at all: the load's row in `sis_loads` confirms them.
4. ANALYZE when the load changed much or statistics are missing, then the change record (events),
   last, and commit.

Any bad line raises before the commit, so the transaction rolls back and the database is exactly as
it was: the TEMP tables and everything staged vanish with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from registrar.db.base import sqlite_timestamp
from registrar.db.database import Database
from registrar.sis.extract import ExtractReader, open_extract
from registrar.sis.records import (
    LineError,
    LoadFailed,
    Record,
    SectionRow,
    StageRow,
    TermRow,
    check,
)
from registrar.sis.repository import Stage

__all__ = ["LineError", "LoadFailed", "LoadResult", "load", "load_records"]

BATCH = 20_000
# A load that changes at least this share of the enrollments refreshes the planner statistics.
ANALYZE_SHARE = 0.1


@dataclass
class LoadResult:
    lines: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    # Records whose value written through the API after the extract was taken was kept.
    kept: int = 0
    people: int = 0
    people_changed: int = 0
    sections: int = 0
    terms: int = 0
    seconds: float = 0.0
    as_of: dt.datetime | None = None
    loaded_at: dt.datetime | None = None
    # The largest enrollment pk before the load: the ones it created are above it.
    created_after: int = 0

    def summary(self) -> str:
        return (
            f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.removed} removed; kept {self.kept} API writes newer than the extract"
        )


def _once(seen: dict[str, Any], described: SectionRow | TermRow, line: int, what: str) -> None:
    """Remember a section or term by id; one described two ways in an extract is refused."""
    first = seen.get(described.id)
    if first is None:
        seen[described.id] = (described, line)
    elif first[0] != described:
        raise LineError(
            line, f"{what} {described.id!r} differs from its description on line {first[1]}"
        )


class Collector:
    """Validated lines in, staging batches out; remembers people, sections and terms."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        self.batch: list[StageRow] = []
        self.lines = 0
        # netid -> confidential: a person is confidential if any of their lines says so.
        self.people: dict[str, bool] = {}
        # id -> (attributes, first line), to refuse one section described two ways.
        self.sections: dict[str, tuple[SectionRow, int]] = {}
        self.terms: dict[str, tuple[TermRow, int]] = {}

    def add(self, obj: Any, line: int) -> None:
        record: Record = check(obj, line)
        self._remember(record, line)
        row = record.row
        submit, opt_out = row.course_submit_date, row.course_opt_out_date
        if self.sqlite and (submit is not None or opt_out is not None):
            # Raw SQL on SQLite bypasses the column type: stage the text it would have written.
            row = row._replace(
                course_submit_date=None if submit is None else sqlite_timestamp(submit),
                course_opt_out_date=None if opt_out is None else sqlite_timestamp(opt_out),
            )
        self.batch.append(row)
        self.lines += 1

    def _remember(self, record: Record, line: int) -> None:
        netid = record.row.netid
        if record.confidential or netid not in self.people:
            self.people[netid] = record.confidential or self.people.get(netid, False)
        _once(self.sections, record.section, line, "section")
        _once(self.terms, record.term, line, "term")

    def take(self) -> list[StageRow]:
        batch, self.batch = self.batch, []
        return batch


def file_time(path: Path) -> dt.datetime:
    """The default as-of of an extract: its file's modification time, to the second, UTC."""
    try:
        seconds = path.stat().st_mtime
    except OSError as exc:
        raise LoadFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC)


async def load(
    db: Database,
    path: Path,
    *,
    replace: bool,
    as_of: dt.datetime | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> LoadResult:
    """Load the extract at `path` (taken from the SIS at `as_of`, default the file's modification
    time), all or nothing. Raises LoadFailed or LineError (one line each) and then writes nothing.

    `on_batch(lines, bytes read)` and `on_phase(name)` report progress.
    """
    when = as_of if as_of is not None else file_time(path)
    with open_extract(path) as handle:
        reader = ExtractReader(handle)
        progress = None
        if on_batch is not None:
            report = on_batch

            def progress(lines: int) -> None:
                report(lines, reader.bytes_read)

        return await load_records(
            db,
            reader,
            replace=replace,
            as_of=when,
            source=str(path),
            on_batch=progress,
            on_phase=on_phase,
        )


async def load_records(
    db: Database,
    records: Iterable[tuple[int, Any]],
    *,
    replace: bool = False,
    as_of: dt.datetime | None = None,
    source: str | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    before_commit: Callable[[AsyncConnection, LoadResult], Awaitable[None]] | None = None,
) -> LoadResult:
    """Validate and upsert `(line number, parsed object)` pairs in one transaction.

    Shared by `load` (lines of a file), `registrar demo` (generated records) and the scheduled
    refresh, whose `before_commit` records the refresh in the load's own transaction (it may raise
    to roll the load back). `as_of` is when the records were taken from the SIS (None: now,
    nothing the API wrote is newer). Raises LineError on the first bad record; then nothing is
    written.
    """
    started = time.perf_counter()
    result = LoadResult()
    async with db.bulk() as conn:
        stage = Stage(conn)
        collector = Collector(stage.sqlite)
        await stage.create()
        pending: asyncio.Task[None] | None = None
        try:
            for line, obj in records:
                collector.add(obj, line)
                if len(collector.batch) >= BATCH:
                    # Parse the next batch while the driver writes this one (aiosqlite works in
                    # its own thread; COPY streams from the event loop).
                    if pending is not None:
                        await pending
                    pending = asyncio.create_task(stage.write(collector.take()))
                    await asyncio.sleep(0)
                    if on_batch is not None:
                        on_batch(collector.lines)
            if pending is not None:
                await pending
            pending = None
            await stage.write(collector.take())
            if on_batch is not None:
                on_batch(collector.lines)
            result.lines = collector.lines
            if replace and not result.lines:
                # An empty file is far likelier a failed export than a university with no classes.
                raise LoadFailed("the extract has no enrollments; --replace would remove them all")

            if on_phase is not None:
                on_phase("applying")
            await stage.refuse_duplicates()
            await stage.lock()
            result.loaded_at = stage.now
            result.as_of = as_of or stage.now
            await _apply(stage, collector, result, replace=replace)
            await stage.record_load(
                {
                    "loaded_at": stage.now,
                    "as_of": result.as_of,
                    "complete": replace,
                    "source": None if source is None else source[:1024],
                    "lines": result.lines,
                    "inserted": result.inserted,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                    "removed": result.removed,
                    "kept": result.kept,
                    "milliseconds": round((time.perf_counter() - started) * 1000),
                }
            )
            changed = result.inserted + result.updated + result.removed
            if on_phase is not None:
                on_phase("analyzing")
            await stage.analyze(force=changed > 0 and changed >= ANALYZE_SHARE * result.lines)
            if before_commit is not None:
                # The caller's record of this load (the refresh's), in its transaction: before
                # the change record, whose INSERT must stay last (events/record.py's rule).
                await before_commit(conn, result)
            await stage.record_changes(result.created_after)
        except BaseException:
            # Let a batch in flight finish before the rollback: cancelling a COPY half-way leaves
            # asyncpg's connection busy ("another operation is in progress") and the rollback fails.
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            raise
        await stage.finish()
    result.seconds = time.perf_counter() - started
    return result


async def _apply(stage: Stage, collector: Collector, result: LoadResult, *, replace: bool) -> None:
    """Step 3 of the module's docstring, with the load lock held; fills in `result`'s counts."""
    existing = await stage.existing()
    refs = await stage.compare_references(
        collector.people,
        (term for term, _line in collector.terms.values()),
        (section for section, _line in collector.sections.values()),
    )
    assert result.as_of is not None
    result.updated, result.kept = await stage.diff(result.as_of, refs.touched)
    result.inserted = result.lines - existing
    result.unchanged = existing - result.updated
    result.people = len(collector.people)
    result.terms = len(collector.terms)
    result.sections = len(collector.sections)
    result.people_changed = len(refs.people)
    await stage.upsert_references(refs)
    if replace:
        result.removed = await stage.remove_absent()
    else:
        await stage.related_elsewhere(refs.touched)
    await stage.update_enrollments(confirm_unchanged=not replace)
    result.created_after = await stage.insert_enrollments(result.inserted)
