"""Loading a SIS extract (JSON Lines, one enrollment per line), all or nothing.

How a load runs, in one write transaction (`Database.bulk()`, BEGIN IMMEDIATE on SQLite; but see
"before the write lock" below for a refresh on SQLite):

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

The unchanged lines. Parsing and validating a million lines costs 30-40 s of this process's CPU
on our 2-core machine whatever the database does, so a complete load from a file (`--replace`,
as the scheduled refresh) does not parse a line whose bytes it has loaded before: every load
keeps `line_hash` of each row's line in `enrollments.sis_line_hash`, and a complete load reads
those of the rows the API has not written since (api_changed_at: a line with the same bytes may
have to undo that write), with the API write lock held from the start. A line whose hash a row
holds is counted and skipped; the others are parsed and staged as above; the rows no line
vouched for and none staged are what `--replace` removes. Its work follows what changed: 1M
lines, 1% changed, figures in the README. What only the skipped lines could settle makes it
roll back and load again parsing every line (so its messages and results are exactly the full
load's): a bad line (the first bad line is a changed one, but its message may name an earlier
line), an id on two lines, a changed line that redescribes a section, term or person (the
skipped lines describe them too), a confidential person whose line changed or left (another
line may be what made them confidential). For the skipped lines to be what their rows say, a
partial load that redescribes a section, term or person clears the hashes of the rows it does
not list (`Stage.related_elsewhere`); rows from before migration 0014 have none, and the first
complete load stores them (one write per row, once).

Before the write lock (SQLite, a complete load from a file, the scheduled refresh's). SQLite has
one writer: a load that held the write lock from its BEGIN IMMEDIATE made every other write wait
while it read and hashed the file (a PATCH sent during a 1M-line refresh waited 9.7 s for its
202, the API's task insert on the busy timeout; a longer refresh would have failed it with 503).
So such a load reads the stored hashes, and the newest load and audit row (`Stage.marks`), in
one short read transaction; parses and stages the changed lines in a transaction that writes
TEMP tables only (they belong to the connection and outlive its transactions; writing them
takes no lock on the main database: tests/sis/test_load_unlocked.py gets BEGIN IMMEDIATE on
another connection meanwhile, without waiting); and only then begins its write transaction
(`Stage.begin_write`) for the steps from 2 on. What may have changed in between:
- another load committed (a newer `sis_loads` row): the hashes may vouch for rows it changed,
  so it rolls back and starts again with the write lock from the start (_LockFirst; rare: two
  loads at once);
- tasks applied PATCHes (their audit rows, `Stage.written_since`; nothing else writes
  enrollments): a row whose line was skipped as unchanged may now hold an API write, which the
  skipped line might have to undo, and which would make the row look unvouched (`--replace`
  would remove it). Those few lines are read again (by offset), parsed and staged, so the diff,
  under the lock, weighs each write against `as_of` as it weighs the others: kept (and counted)
  when newer, replaced by the extract's value when not. Rows written whose line was staged, or
  whose line is gone, are decided under the lock already.
So the result is the one the load would have had holding the lock from the start, serialized at
its write transaction. It takes that lock from the start anyway (the steps above, unchanged)
when `as_of` is later than the load's start (an explicit future --as-of): a task applied while
it parsed would be older than such an extract and undone by it, where a load holding the lock
would have made the task wait and be applied after it, kept. With `as_of` at or before the
start, a task applied meanwhile began after the load did (or was under way, and the lock would
have waited for it anyway), so a write is kept exactly when the locked load would keep it.
PostgreSQL: the load holds the API write lock from the start, as it did (reads and the queue's
writes never waited for it there).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from array import array
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from registrar.core.clock import utcnow
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
    line_hash,
    parse_line,
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

    def add(self, obj: Any, line: int, line_hash: int | None = None) -> None:
        record: Record = check(obj, line, line_hash)
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
    if isinstance(records, ExtractReader) and records.handle.seekable():
        if replace:
            # SQLite: parse before taking the write lock ("before the write lock" above), for an
            # extract taken before this load started; a later --as-of takes the lock first.
            unlocked = db.dialect == "sqlite" and as_of is not None and as_of <= utcnow()
            try:
                # A second round only after _LockFirst: rolled back because another load
                # committed while this one staged; again, with the write lock from the start.
                for lock_later in (unlocked, False):
                    try:
                        return await _load_staged(
                            db,
                            records,
                            skip=True,
                            unlocked=lock_later,
                            replace=replace,
                            as_of=as_of,
                            source=source,
                            on_batch=on_batch,
                            on_phase=on_phase,
                            before_commit=before_commit,
                            started=started,
                        )
                    except _LockFirst:
                        if not lock_later:
                            raise  # holding the lock from the start, no other load can commit
            except _ParseAll:
                pass  # rolled back: load it again, every line parsed
        lines: Iterable[tuple[Any, ...]] = _Hashed(records)
    else:
        lines = records
    return await _load_staged(
        db,
        lines,
        skip=False,
        replace=replace,
        as_of=as_of,
        source=source,
        on_batch=on_batch,
        on_phase=on_phase,
        before_commit=before_commit,
        started=started,
    )


class _LockFirst(Exception):
    """A refresh that staged before taking the write lock found that another load committed
    meanwhile (what it skipped was decided against rows that load may have changed): roll back
    and load again, with the write lock from the start."""


class _ParseAll(Exception):
    """A refresh skipping unchanged lines met what only every line can settle: roll back and
    load again, parsing them all."""


class _Hashed:
    """An extract's lines as `(line number, parsed JSON, line_hash)`: every line parsed."""

    def __init__(self, reader: ExtractReader) -> None:
        self.reader = reader

    def __iter__(self) -> Iterator[tuple[int, Any, int | None]]:
        for number, raw, digest in self.reader.lines():
            yield number, parse_line(raw, number), digest


class _Skipping:
    """An extract's lines as `(line number, parsed JSON, line_hash)`, but only those whose hash no
    row holds (`known`, line hash -> 0, becomes line hash -> its line): the unchanged lines are
    counted, not parsed. Any bad line or repeated line raises _ParseAll, so that the full load
    reports it exactly as it would have."""

    def __init__(
        self, reader: ExtractReader, known: dict[int, int], tick: Callable[[], None] | None
    ) -> None:
        self.reader = reader
        self.known = known
        self.skipped = 0
        self.tick = tick  # called every BATCH lines skipped: progress, and a stopping worker

    def __iter__(self) -> Iterator[tuple[int, Any, int | None]]:
        known = self.known
        for number, raw, digest in self.reader.lines():
            seen = known.get(digest)
            if seen is None:
                try:
                    obj = parse_line(raw, number)
                except LineError:
                    raise _ParseAll from None
                yield number, obj, digest
            elif seen:
                raise _ParseAll  # the same line twice
            else:
                known[digest] = number
                self.skipped += 1
                if self.tick is not None and not self.skipped % BATCH:
                    self.tick()

    def unseen(self) -> list[int]:
        return [digest for digest, line in self.known.items() if not line]


async def _load_staged(
    db: Database,
    records: Iterable[tuple[Any, ...]],
    *,
    skip: bool,
    replace: bool,
    as_of: dt.datetime | None,
    source: str | None,
    on_batch: Callable[[int], None] | None,
    on_phase: Callable[[str], None] | None,
    before_commit: Callable[[AsyncConnection, LoadResult], Awaitable[None]] | None,
    started: float,
    unlocked: bool = False,
) -> LoadResult:
    """`load_records`' one transaction. `skip` (a complete refresh from a file): lines whose
    bytes hash as a row's stored `sis_line_hash` are not parsed nor staged (see the module's
    docstring, "the unchanged lines"); raises _ParseAll, rolled back, when that cannot decide.
    `unlocked` (SQLite, with `skip`): read the hashes and stage before the write transaction
    ("before the write lock"); raises _LockFirst, rolled back, when another load got in."""
    result = LoadResult()
    async with db.bulk_staged() if unlocked else db.bulk() as conn:
        stage = Stage(conn)
        collector = Collector(stage.sqlite)
        skipping: _Skipping | None = None
        reader: ExtractReader | None = None
        marks = (0, 0)
        pending: asyncio.Task[None] | None = None
        try:
            # Unlocked: a DEFERRED transaction (SQLite), which reads and writes TEMP tables only.
            await stage.create()
            if skip:
                assert isinstance(records, ExtractReader)
                reader = records
                if unlocked:
                    # The hashes and the marks in one snapshot; the write lock is checked
                    # against them ("before the write lock"). Offsets: to read again the few
                    # skipped lines whose rows a task writes meanwhile.
                    marks = await stage.marks()
                    reader.offsets = array("q")
                else:
                    # The API write lock from the start (SQLite's write lock is held from
                    # BEGIN): no row's api_changed_at may move between the hashes and the commit.
                    reader.offsets = None
                    await stage.lock()
                report = on_batch
                tick = None
                if report is not None:

                    def tick() -> None:
                        report(collector.lines + skipping.skipped)  # type: ignore[union-attr]

                skipping = _Skipping(records, await stage.known_hashes(), tick)
                records = skipping
                if unlocked:
                    await conn.commit()  # the snapshot ends; staging writes TEMP tables only
            for line, obj, *digest in records:
                if skipping is None:
                    collector.add(obj, line, *digest)
                else:
                    try:
                        collector.add(obj, line, *digest)
                    except LineError:
                        raise _ParseAll from None
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
            if unlocked:
                assert skipping is not None and reader is not None
                await stage.begin_write()
                await stage.lock()  # the load's time: after every write that got in first
                await _since_staged(stage, collector, skipping, reader, marks)
            result.lines = collector.lines
            if skipping is not None:
                result.lines += skipping.skipped
            if replace and not result.lines:
                # An empty file is far likelier a failed export than a university with no classes.
                raise LoadFailed("the extract has no enrollments; --replace would remove them all")

            if on_phase is not None:
                on_phase("applying")
            if skipping is not None:
                await stage.stage_unseen(skipping.unseen())
                try:
                    await stage.refuse_duplicates()
                except LineError:
                    raise _ParseAll from None
                if await stage.staged_twice():
                    raise _ParseAll
            else:
                await stage.refuse_duplicates()
                await stage.lock()
            result.loaded_at = stage.now
            result.as_of = as_of or stage.now
            await _apply(
                stage,
                collector,
                result,
                replace=replace,
                skipped=0 if skipping is None else skipping.skipped,
            )
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
            await stage.finish()
            if unlocked:
                await conn.commit()
        except BaseException:
            # Let a batch in flight finish before the rollback: cancelling a COPY half-way leaves
            # asyncpg's connection busy ("another operation is in progress") and the rollback fails.
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            if unlocked:
                # The TEMP tables outlive the rollback of a later transaction than theirs. (A
                # connection too broken for this is discarded with its TEMP tables.)
                with contextlib.suppress(Exception):
                    await conn.rollback()
                    await stage.finish()
                    await conn.commit()
            raise
    result.seconds = time.perf_counter() - started
    return result


async def _since_staged(
    stage: Stage,
    collector: Collector,
    skipping: _Skipping,
    reader: ExtractReader,
    marks: tuple[int, int],
) -> None:
    """With the write lock just taken, after staging without it: what changed since the hashes
    were read. Another load: _LockFirst. Rows a task wrote (their audit rows): those whose line
    was skipped as unchanged are parsed and staged now, so that the diff weighs their write
    against `as_of` like any other row's (kept if newer, counted; else the extract's value)."""
    newest_load, audit_pk = marks
    if await stage.newest_load() != newest_load:
        raise _LockFirst
    known = skipping.known
    for digest in await stage.written_since(audit_pk):
        number = known.get(digest)
        if not number:
            continue  # not a skipped line's row: staged already, or none of the extract's
        raw = reader.line(number)
        if line_hash(raw) != digest:
            raise _ParseAll  # the file changed under the load: the full load reads it again
        try:
            collector.add(parse_line(raw, number), number, digest)
        except LineError:
            raise _ParseAll from None
        known[digest] = 0  # no longer a skipped line: its row is staged
        skipping.skipped -= 1
    await stage.write(collector.take())


async def _apply(
    stage: Stage, collector: Collector, result: LoadResult, *, replace: bool, skipped: int
) -> None:
    """Step 3 of the module's docstring, with the load lock held; fills in `result`'s counts.
    `skipped`: how many unchanged lines a complete refresh did not stage (raises _ParseAll when
    the staged ones change a person, section or term those lines describe too)."""
    existing = await stage.existing() + skipped
    refs = await stage.compare_references(
        collector.people,
        (term for term, _line in collector.terms.values()),
        (section for section, _line in collector.sections.values()),
    )
    if skipped:
        touched = refs.touched
        if touched.people or touched.sections or touched.terms:
            # The skipped lines describe these too: whether they agree (or, for a person, still
            # say confidential) only parsing them tells. Rare: descriptions seldom change.
            raise _ParseAll
        if any(
            collector.people.get(netid) is not True
            for netid in await stage.vanishing_confidential()
        ):
            raise _ParseAll
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
        result.removed = await stage.remove_absent(skipped=bool(skipped))
    else:
        await stage.related_elsewhere(refs.touched)
    await stage.update_enrollments(confirm_unchanged=not replace)
    result.created_after = await stage.insert_enrollments(result.inserted)
    if skipped:
        # The enrollments are now exactly the extract's.
        result.people, result.sections, result.terms = await stage.extract_counts()
