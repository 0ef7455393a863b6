"""Loading a SIS extract (JSON Lines, one enrollment per line), all or nothing.

How a load runs, in one write transaction (`Database.bulk()`, BEGIN IMMEDIATE on SQLite):

1. Stream the file, parse each line with orjson and validate it by hand (`records.check`); valid
   rows go in batches into a TEMP staging table (executemany on SQLite, COPY on PostgreSQL), so
   Python holds one batch at a time however long the extract is. People, sections and terms are
   few: they are collected in dicts on the way (which also catches a section or term described two
   ways in one extract).
2. Set-based SQL from the staging table: refuse duplicate ids, count inserted / updated / unchanged,
   upsert people, terms and sections, delete what the extract lacks (`--replace`), then one
   INSERT ... SELECT ... ON CONFLICT (id) DO UPDATE for the enrollments. An update keeps the row's
   integer `pk`, which orders found sets; new rows get theirs in extract order.
3. Commit, then ANALYZE so both planners have statistics for the new data.

Any bad line raises before the commit, so the transaction rolls back and the database is exactly as
it was: the TEMP table and everything staged vanish with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from registrar.core.clock import utcnow
from registrar.db.base import sqlite_timestamp
from registrar.db.database import Database
from registrar.sis.records import LineError, Record, SectionRow, StageRow, TermRow, check
from registrar.sis.repository import Stage, analyze

BATCH = 20_000


class LoadFailed(Exception):
    """A load that cannot go on (bad line, unreadable file): one line for the operator."""


@dataclass
class LoadResult:
    lines: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    people: int = 0
    people_changed: int = 0
    sections: int = 0
    terms: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.removed} removed"
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


async def load_records(
    db: Database,
    records: Iterable[tuple[int, Any]],
    *,
    replace: bool = False,
    on_batch: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> LoadResult:
    """Validate and upsert `(line number, parsed object)` pairs in one transaction.

    Shared by `registrar load` (lines of a file) and `registrar demo` (generated records).
    Raises LineError on the first bad record; then nothing is written.
    """
    started = time.perf_counter()
    result = LoadResult()
    now = utcnow().replace(microsecond=0)
    async with db.bulk() as conn:
        stage = Stage(conn, now)
        collector = Collector(stage.sqlite)
        await stage.create()
        try:
            pending: asyncio.Task[None] | None = None
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
            existing, changed = await stage.count()
            result.inserted = result.lines - existing
            result.updated = changed
            result.unchanged = existing - changed
            result.people = len(collector.people)
            result.terms = len(collector.terms)
            result.sections = len(collector.sections)
            result.people_changed = await stage.upsert_references(
                collector.people,
                (term for term, _line in collector.terms.values()),
                (section for section, _line in collector.sections.values()),
            )
            if replace:
                result.removed = await stage.remove_absent()
            await stage.upsert_enrollments(
                inserted=result.inserted, updated=result.updated, unchanged=result.unchanged
            )
        except BaseException:
            # Let a batch in flight finish before the rollback: cancelling a COPY half-way leaves
            # asyncpg's connection busy ("another operation is in progress") and the rollback fails.
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            raise
        await stage.finish()
    if on_phase is not None:
        on_phase("analyzing")
    async with db.bulk() as conn:
        await analyze(conn)
    result.seconds = time.perf_counter() - started
    return result
