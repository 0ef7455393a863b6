"""`registrar load`: import a SIS extract (JSON Lines, one enrollment per line), all or nothing.

How a load runs, in one write transaction (`Database.writing()`, BEGIN IMMEDIATE on SQLite):

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
import datetime as dt
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from registrar.cli.main import fail
from registrar.core.clock import utcnow
from registrar.sis.records import LineError, Record, check, parse_line

if TYPE_CHECKING:
    from rich.progress import Progress

    from registrar.core.runtime import Runtime
    from registrar.core.settings import Settings

BATCH = 20_000
# Page cache of the loading connection, in KiB: a million-row load touches ~14 indexes at random,
# and with SQLite's default 2 MiB cache it spills and rereads pages all the time. SQLite only takes
# what a load uses, and gives it back when `finish` restores the default.
SQLITE_CACHE_KIB = 256 * 1024
SQLITE_TEMP_CACHE_KIB = 64 * 1024
# From this many new rows (and more new than old), SQLite rebuilds the enrollment indexes instead
# of maintaining them row by row.
BULK_REBUILD_MIN = 50_000

STAGE_COLUMNS = (
    "line",
    "id",
    "netid",
    "role",
    "school_id",
    "section_id",
    "term_id",
    "is_active",
    "is_in_session",
    "final_grade",
    "credit_hours_earned",
    "course_submit_date",
    "course_opt_out_date",
)
# The enrollment columns a line carries; "unchanged" means none of these differs.
DATA_COLUMNS = STAGE_COLUMNS[2:]

_SQLITE_STAGE = """
CREATE TEMP TABLE sis_stage (
    line INTEGER NOT NULL, id TEXT NOT NULL, netid TEXT NOT NULL, role TEXT NOT NULL,
    school_id TEXT, section_id TEXT NOT NULL, term_id TEXT NOT NULL, is_active INTEGER NOT NULL,
    is_in_session INTEGER NOT NULL, final_grade TEXT, credit_hours_earned REAL,
    course_submit_date TEXT, course_opt_out_date TEXT
)"""
_PG_STAGE = """
CREATE TEMP TABLE sis_stage (
    line bigint NOT NULL, id text NOT NULL, netid text NOT NULL, role text NOT NULL,
    school_id text, section_id text NOT NULL, term_id text NOT NULL, is_active boolean NOT NULL,
    is_in_session boolean NOT NULL, final_grade text, credit_hours_earned double precision,
    course_submit_date timestamptz, course_opt_out_date timestamptz
) ON COMMIT DROP"""


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


def sqlite_timestamp(value: dt.datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime writes for a naive UTC datetime (see db.UTCDateTime).

    Raw SQL bypasses the column type, so write the very same format: SQLite compares these as text.
    """
    value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond:06d}"


class Collector:
    """Validated lines in, staging batches out; remembers people, sections and terms."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        self.batch: list[tuple[Any, ...]] = []
        self.lines = 0
        # netid -> confidential: a person is confidential if any of their lines says so.
        self.people: dict[str, bool] = {}
        # id -> (attributes, first line), to refuse one section described two ways.
        self.sections: dict[str, tuple[tuple[str, str | None, str | None], int]] = {}
        self.terms: dict[str, tuple[tuple[str, str | None, str | None, str | None], int]] = {}

    def add(self, obj: Any, line: int) -> None:
        record: Record = check(obj, line)
        self._remember(record, line)
        row = record.row
        if self.sqlite and (row[11] is not None or row[12] is not None):
            submit, opt_out = row[11], row[12]
            row = (
                *row[:11],
                None if submit is None else sqlite_timestamp(submit),
                None if opt_out is None else sqlite_timestamp(opt_out),
            )
        self.batch.append(row)
        self.lines += 1

    def _remember(self, record: Record, line: int) -> None:
        netid = record.row[2]
        if record.confidential or netid not in self.people:
            self.people[netid] = record.confidential or self.people.get(netid, False)
        section = record.section
        seen = self.sections.get(section[0])
        if seen is None:
            self.sections[section[0]] = (section, line)
        elif seen[0] != section:
            raise LineError(
                line, f"section {section[0]!r} differs from its description on line {seen[1]}"
            )
        term = record.term
        seen_term = self.terms.get(term[0])
        if seen_term is None:
            self.terms[term[0]] = (term, line)
        elif seen_term[0] != term:
            raise LineError(
                line, f"term {term[0]!r} differs from its description on line {seen_term[1]}"
            )

    def take(self) -> list[tuple[Any, ...]]:
        batch, self.batch = self.batch, []
        return batch


class Stage:
    """The staging table and the set-based statements, per dialect."""

    def __init__(self, conn: AsyncConnection, now: dt.datetime) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.now = now
        self.now_param: Any = sqlite_timestamp(now) if self.sqlite else now
        self.distinct = "IS NOT" if self.sqlite else "IS DISTINCT FROM"
        self._raw: Any = None
        self._cache = -2000

    async def create(self) -> None:
        if self.sqlite:
            # A big page cache keeps the 13 enrollment indexes in memory while a million rows go
            # in; restored in `finish`, since the connection goes back to the pool.
            self._cache = int((await self.conn.exec_driver_sql("PRAGMA cache_size")).scalar_one())
            await self.conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            await self.conn.exec_driver_sql(f"PRAGMA temp.cache_size = -{SQLITE_TEMP_CACHE_KIB}")
            await self.conn.exec_driver_sql("DROP TABLE IF EXISTS temp.sis_stage")
            await self.conn.exec_driver_sql(_SQLITE_STAGE)
        else:
            await self.conn.exec_driver_sql(_PG_STAGE)  # also starts the transaction for COPY
            raw = await self.conn.get_raw_connection()
            self._raw = raw.driver_connection

    async def write(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.sqlite:
            marks = ", ".join("?" * len(STAGE_COLUMNS))
            await self.conn.exec_driver_sql(f"INSERT INTO temp.sis_stage VALUES ({marks})", rows)
        else:
            await self._raw.copy_records_to_table("sis_stage", records=rows, columns=STAGE_COLUMNS)

    async def _one(self, sql: str, **params: Any) -> Any:
        return (await self.conn.execute(text(sql), params)).one()

    async def refuse_duplicates(self) -> None:
        name = "temp.ix_sis_stage_id" if self.sqlite else "ix_sis_stage_id"
        await self.conn.exec_driver_sql(f"CREATE INDEX {name} ON sis_stage (id, line)")
        if not self.sqlite:
            await self.conn.exec_driver_sql("ANALYZE sis_stage")
        dup_ids = (
            (
                await self.conn.execute(
                    text("SELECT id FROM sis_stage GROUP BY id HAVING count(*) > 1")
                )
            )
            .scalars()
            .all()
        )
        if not dup_ids:
            return
        # Rare: find the first line that repeats an earlier one, to name it.
        rows = (
            await self.conn.execute(
                text(
                    "SELECT line, id FROM sis_stage WHERE id IN (SELECT id FROM sis_stage "
                    "GROUP BY id HAVING count(*) > 1) ORDER BY line"
                )
            )
        ).all()
        first: dict[str, int] = {}
        for line, enrollment_id in rows:
            if enrollment_id in first:
                raise LineError(
                    line, f"duplicate id {enrollment_id!r} (first on line {first[enrollment_id]})"
                )
            first[enrollment_id] = line

    async def count(self, result: LoadResult) -> None:
        differs = " OR ".join(f"e.{c} {self.distinct} s.{c}" for c in DATA_COLUMNS)
        existing, changed = await self._one(
            "SELECT count(*), coalesce(sum(CASE WHEN " + differs + " THEN 1 ELSE 0 END), 0) "
            "FROM sis_stage s JOIN enrollments e ON e.id = s.id"
        )
        result.inserted = result.lines - int(existing)
        result.updated = int(changed)
        result.unchanged = int(existing) - int(changed)

    async def _existing(self, sql: str) -> dict[str, tuple[Any, ...]]:
        rows = (await self.conn.execute(text(sql))).all()
        return {row[0]: tuple(row) for row in rows}

    async def upsert_references(self, collector: Collector, result: LoadResult) -> None:
        """People, terms and sections: compared in Python (they number in the tens of thousands,
        not millions), so only new or changed ones are written and the counts are exact on both
        backends (asyncpg's executemany reports no row counts)."""
        result.people = len(collector.people)
        result.terms = len(collector.terms)
        result.sections = len(collector.sections)
        known_people = await self._existing("SELECT netid, confidential FROM people")
        people = [
            {"netid": netid, "confidential": conf, "now": self.now_param}
            for netid, conf in collector.people.items()
            if netid not in known_people or bool(known_people[netid][1]) != conf
        ]
        result.people_changed = len(people)
        if people:
            await self.conn.execute(
                text(
                    "INSERT INTO people (netid, confidential, updated_at) "
                    "VALUES (:netid, :confidential, :now) ON CONFLICT (netid) DO UPDATE SET "
                    "confidential = excluded.confidential, updated_at = excluded.updated_at"
                ),
                people,
            )
        known_terms = await self._existing(
            "SELECT id, lms_term_id, sis_ptrm_code, sis_term_code FROM terms"
        )
        terms = [
            {"id": t[0], "lms": t[1], "ptrm": t[2], "code": t[3]}
            for t, _line in collector.terms.values()
            if known_terms.get(t[0]) != t
        ]
        if terms:
            await self.conn.execute(
                text(
                    "INSERT INTO terms (id, lms_term_id, sis_ptrm_code, sis_term_code) "
                    "VALUES (:id, :lms, :ptrm, :code) ON CONFLICT (id) DO UPDATE SET "
                    "lms_term_id = excluded.lms_term_id, sis_ptrm_code = excluded.sis_ptrm_code, "
                    "sis_term_code = excluded.sis_term_code"
                ),
                terms,
            )
        known_sections = await self._existing(
            "SELECT id, lms_section_id, sis_section_id FROM sections"
        )
        sections = [
            {"id": x[0], "lms": x[1], "sis": x[2]}
            for x, _line in collector.sections.values()
            if known_sections.get(x[0]) != x
        ]
        if sections:
            await self.conn.execute(
                text(
                    "INSERT INTO sections (id, lms_section_id, sis_section_id) "
                    "VALUES (:id, :lms, :sis) ON CONFLICT (id) DO UPDATE SET "
                    "lms_section_id = excluded.lms_section_id, "
                    "sis_section_id = excluded.sis_section_id"
                ),
                sections,
            )

    async def remove_absent(self, result: LoadResult) -> None:
        # Audit rows are kept: enrollment_audit has no foreign key to enrollments, on purpose.
        removed = await self.conn.execute(
            text(
                "DELETE FROM enrollments WHERE NOT EXISTS "
                "(SELECT 1 FROM sis_stage s WHERE s.id = enrollments.id)"
            )
        )
        result.removed = max(removed.rowcount, 0)

    async def upsert_enrollments(self, result: LoadResult) -> None:
        """Three set-based statements rather than one INSERT ... ON CONFLICT DO UPDATE.

        An upsert rewrites every column, so every index entry, of every row it touches; most rows
        of a periodic extract are unchanged, and for them only cache_date (and its index) moves.
        """
        now = {"now": self.now_param}
        differs = " OR ".join(f"enrollments.{c} {self.distinct} s.{c}" for c in DATA_COLUMNS)
        if result.updated:
            sets = ", ".join(f"{c} = s.{c}" for c in DATA_COLUMNS)
            await self.conn.execute(
                text(
                    f"UPDATE enrollments SET {sets}, cache_date = :now FROM sis_stage s "
                    f"WHERE s.id = enrollments.id AND ({differs})"
                ),
                now,
            )
        if result.unchanged:
            await self.conn.execute(
                text(
                    "UPDATE enrollments SET cache_date = :now FROM sis_stage s "
                    f"WHERE s.id = enrollments.id AND enrollments.cache_date {self.distinct} :now"
                ),
                now,
            )
        if result.inserted:
            rebuild = await self._drop_indexes_for_bulk_insert(result.inserted)
            columns = ", ".join(DATA_COLUMNS)
            # New rows get their pk in extract order.
            await self.conn.execute(
                text(
                    f"INSERT INTO enrollments (id, {columns}, cache_date) "
                    f"SELECT id, {columns}, :now FROM sis_stage s WHERE NOT EXISTS "
                    "(SELECT 1 FROM enrollments e WHERE e.id = s.id) ORDER BY line"
                ),
                now,
            )
            for create_index in rebuild:
                await self.conn.exec_driver_sql(create_index)

    async def _drop_indexes_for_bulk_insert(self, inserting: int) -> list[str]:
        """On SQLite, when a load mostly adds rows, drop the secondary indexes and build them again
        afterwards: one sort per index instead of a random b-tree insert per row and index.

        Safe because SQLite's DDL is transactional (a failed load rolls the indexes back in place)
        and WAL readers keep their snapshot, old indexes included. Not on PostgreSQL: DROP INDEX
        takes an ACCESS EXCLUSIVE lock, which would block every reader for the whole load. The
        definitions come from sqlite_master, so the migrations stay the one source of the schema.
        """
        if not self.sqlite or inserting < BULK_REBUILD_MIN:
            return []
        existing = (await self.conn.exec_driver_sql("SELECT count(*) FROM enrollments")).scalar()
        if inserting < int(existing or 0):
            return []
        indexes = (
            await self.conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'enrollments' AND sql IS NOT NULL"
            )
        ).all()
        for name, _sql in indexes:
            await self.conn.exec_driver_sql(f'DROP INDEX "{name}"')
        return [sql for _name, sql in indexes]

    async def finish(self) -> None:
        if self.sqlite:
            await self.conn.exec_driver_sql("DROP TABLE IF EXISTS temp.sis_stage")
            await self.conn.exec_driver_sql(f"PRAGMA cache_size = {int(self._cache)}")
            await self.conn.exec_driver_sql("PRAGMA temp.cache_size = -2000")
        # PostgreSQL: ON COMMIT DROP.


async def load_records(
    runtime: Runtime,
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
    async with runtime.db.writing() as session:
        conn = await session.connection()
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
            await stage.count(result)
            await stage.upsert_references(collector, result)
            if replace:
                await stage.remove_absent(result)
            await stage.upsert_enrollments(result)
        except BaseException:
            # Let a batch in flight finish before the rollback: cancelling a COPY half-way leaves
            # asyncpg's connection busy ("another operation is in progress") and the rollback fails.
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            raise
        await stage.finish()
    if on_phase is not None:
        on_phase("analyzing")
    await analyze(runtime)
    result.seconds = time.perf_counter() - started
    return result


async def analyze(runtime: Runtime) -> None:
    """Fresh statistics after a bulk change, so the planners pick the indexes."""
    async with runtime.db.writing() as session:
        conn = await session.connection()
        if conn.dialect.name == "sqlite":
            # A sample per index is plenty for the planner and keeps this under a second.
            await conn.exec_driver_sql("PRAGMA analysis_limit = 2000")
            await conn.exec_driver_sql("ANALYZE")
            await conn.exec_driver_sql("PRAGMA analysis_limit = 0")
        else:
            await conn.exec_driver_sql("ANALYZE enrollments, people, sections, terms")


class ExtractReader:
    """Lines of an extract as `(line number, parsed JSON)`, skipping blank lines."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.bytes_read = 0

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        for number, raw in enumerate(self.handle, start=1):
            self.bytes_read += len(raw)
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark, as some exporters write
            if raw.isspace() or not raw:
                continue
            yield number, parse_line(raw, number)


def _progress(*, of_bytes: bool = False) -> Progress | None:
    """A progress bar on stderr when it is a terminal; nothing in pipes, logs and tests.

    A file's progress is counted in bytes read (the line count is unknown until the end), shown as
    a percentage with the lines read so far."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    amount = (
        (TaskProgressColumn(), TextColumn("{task.fields[lines]:,} lines"))
        if of_bytes
        else (MofNCompleteColumn(),)
    )
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *amount,
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def run_load_command(settings: Settings, file: Path, replace: bool) -> None:
    """`registrar load FILE [--replace]`: every failure is one line on stderr and exit 1."""
    import typer

    from registrar.cli.main import run_with_db

    if file.is_dir():
        raise fail(f"cannot read {file}: it is a directory")
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    with handle:
        reader = ExtractReader(handle)
        size = max(file.stat().st_size, 1)
        progress = _progress(of_bytes=True)
        task_id = progress.add_task("loading", total=size, lines=0) if progress else None

        def on_batch(lines: int) -> None:
            if progress is not None and task_id is not None:
                progress.update(task_id, completed=reader.bytes_read, lines=lines)

        def on_phase(phase: str) -> None:
            if progress is not None and task_id is not None:
                progress.update(task_id, description=phase, completed=size)

        async def _load(runtime: Runtime) -> LoadResult:
            return await load_records(
                runtime, reader, replace=replace, on_batch=on_batch, on_phase=on_phase
            )

        try:
            if progress is not None:
                with progress:
                    result = run_with_db(settings, _load)
            else:
                result = run_with_db(settings, _load)
        except (LineError, LoadFailed) as exc:
            raise fail(f"{exc}; nothing was loaded") from None
        except OSError as exc:
            raise fail(f"cannot read {file}: {exc.strerror or exc}; nothing was loaded") from None
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            # The transaction never committed, so the database is as it was.
            raise fail("interrupted; nothing was loaded") from None
        except Exception as exc:  # a database error: still one line, never a traceback
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise fail(f"load failed, nothing was loaded: {first}") from None
    typer.echo(
        f"loaded {result.lines} enrollments from {file} in {result.seconds:.1f} s: "
        f"{result.summary()}"
    )
    typer.echo(
        f"people: {result.people} in the extract ({result.people_changed} added or changed), "
        f"sections: {result.sections}, terms: {result.terms}"
    )
