"""The SIS load's SQL: a staging table and set-based statements, per dialect.

The one place that reaches the database outside `Database.read`/`write` (see db/__init__.py): a
load streams batches on an `AsyncConnection` from `Database.bulk()`, so the next batch is parsed
while the driver writes this one (aiosqlite works in its own thread; PostgreSQL takes COPY from the
event loop). Raw SQL: the enrollment columns are listed once, in `DATA_COLUMNS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from registrar.core.clock import utcnow, whole_second
from registrar.db.base import sqlite_timestamp
from registrar.enrollments import repository as enrollments_repository
from registrar.events.record import lock_commit_order
from registrar.sis.models import SisRefresh
from registrar.sis.records import LineError, SectionRow, StageRow, TermRow
from registrar.tasks.models import Task, TaskStatus

TASKS = cast(Table, Task.__table__)

# Page cache of the loading connection, in KiB: a million-row load touches ~14 indexes at random,
# and with SQLite's default 2 MiB cache it spills and rereads pages all the time. SQLite only takes
# what a load uses, and gives it back when `finish` restores the default.
SQLITE_CACHE_KIB = 256 * 1024
SQLITE_TEMP_CACHE_KIB = 64 * 1024
# From this many new rows (and more new than old), SQLite rebuilds the enrollment indexes instead
# of maintaining them row by row.
BULK_REBUILD_MIN = 50_000

# The staging table: a line's columns (sis.records.StageRow, in order) and their types per dialect.
_STAGE_TYPES = {
    "line": ("INTEGER NOT NULL", "bigint NOT NULL"),
    "id": ("TEXT NOT NULL", "text NOT NULL"),
    "netid": ("TEXT NOT NULL", "text NOT NULL"),
    "role": ("TEXT NOT NULL", "text NOT NULL"),
    "school_id": ("TEXT", "text"),
    "section_id": ("TEXT NOT NULL", "text NOT NULL"),
    "term_id": ("TEXT NOT NULL", "text NOT NULL"),
    "is_active": ("INTEGER NOT NULL", "boolean NOT NULL"),
    "is_in_session": ("INTEGER NOT NULL", "boolean NOT NULL"),
    "final_grade": ("TEXT", "text"),
    "credit_hours_earned": ("REAL", "double precision"),
    "course_submit_date": ("TEXT", "timestamptz"),
    "course_opt_out_date": ("TEXT", "timestamptz"),
    "line_hash": ("INTEGER", "bigint"),
}
STAGE_COLUMNS = StageRow._fields
assert tuple(_STAGE_TYPES) == STAGE_COLUMNS
# The enrollment columns a line carries; "unchanged" means none of these differs.
DATA_COLUMNS = STAGE_COLUMNS[2:-1]
assert STAGE_COLUMNS[-1] == "line_hash"
# The representation's top-level key each column is part of (the change record's `changed`).
REPRESENTATION_KEY = {
    **{c: c for c in DATA_COLUMNS},
    "section_id": "section",
    "term_id": "term",
    "course_submit_date": "course_assessment",
    "course_opt_out_date": "course_assessment",
}
# The order of `changed`: the representation's (enrollments/service.py `represent`), then the
# person's confidentiality (not a key of it: see `_related`).
KEY_ORDER = (
    "final_grade",
    "credit_hours_earned",
    "course_assessment",
    "is_active",
    "is_in_session",
    "netid",
    "role",
    "school_id",
    "section",
    "term",
    "confidential",
)
assert set(REPRESENTATION_KEY.values()) <= set(KEY_ORDER)
# What the API can write: a load keeps these when the API wrote them after the extract was taken.
ASSESSMENT_COLUMNS = ("course_submit_date", "course_opt_out_date")
assert set(ASSESSMENT_COLUMNS) <= set(DATA_COLUMNS)

# What the load changes, one row per enrollment, built before the change and recorded (events)
# after it: kind 'u' (updated; `writes` when its own row changes, `kept` when an API write newer
# than the extract is kept) or 'd' (deleted); `keys` the changed representation keys, each as
# `,"key"`. Created enrollments are not listed: they are the pks the load adds.
_DIFF_COLUMNS = "id {t} NOT NULL, netid {t} NOT NULL, kind {t} NOT NULL, keys {t} NOT NULL, "
_DIFF_DDL = {
    True: "CREATE TEMP TABLE sis_diff ("
    + _DIFF_COLUMNS.format(t="TEXT")
    + "writes INTEGER NOT NULL, kept INTEGER NOT NULL)",
    False: "CREATE TEMP TABLE sis_diff ("
    + _DIFF_COLUMNS.format(t="text")
    + "writes boolean NOT NULL, kept boolean NOT NULL) ON COMMIT DROP",
}
# Sections, terms and people (their confidentiality) the extract changed: kind, id.
_TOUCHED_DDL = {
    True: "CREATE TEMP TABLE sis_touched (kind TEXT NOT NULL, id TEXT NOT NULL)",
    False: "CREATE TEMP TABLE sis_touched (kind text NOT NULL, id text NOT NULL) ON COMMIT DROP",
}
# A complete refresh that skips unchanged lines: the stored line hashes no line of the extract
# had (their rows changed or left the extract).
_UNSEEN_DDL = {
    True: "CREATE TEMP TABLE sis_unseen (h INTEGER PRIMARY KEY)",
    False: "CREATE TEMP TABLE sis_unseen (h bigint PRIMARY KEY) ON COMMIT DROP",
}
_TEMP_TABLES = ("sis_stage", "sis_diff", "sis_touched", "sis_unseen")
# The rows a line of the extract must stand for, when the refresh skipped the lines whose hash a
# row holds: a row whose line was not seen, or that no line hash vouches for.
_UNVOUCHED = (
    "(e.sis_line_hash IS NULL OR e.api_changed_at IS NOT NULL "
    "OR e.sis_line_hash IN (SELECT h FROM sis_unseen))"
)


@dataclass
class Touched:
    """Existing sections, terms and people whose description the extract changes: every
    enrollment of theirs reads differently afterwards."""

    sections: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)


@dataclass
class References:
    """People (netid -> confidential), terms and sections the extract adds or changes."""

    people: dict[str, bool]
    terms: list[TermRow]
    sections: list[SectionRow]
    touched: Touched = field(default_factory=Touched)


def _stage_ddl(dialect: int, suffix: str = "") -> str:
    columns = ", ".join(f"{name} {types[dialect]}" for name, types in _STAGE_TYPES.items())
    return f"CREATE TEMP TABLE sis_stage ({columns}){suffix}"


_SQLITE_STAGE = _stage_ddl(0)
_PG_STAGE = _stage_ddl(1, " ON COMMIT DROP")


class Stage:
    """The staging table and the set-based statements, per dialect."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.set_now(whole_second(utcnow()))
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
            for table in _TEMP_TABLES:
                await self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table}")
            await self.conn.exec_driver_sql(_SQLITE_STAGE)
        else:
            await self.conn.exec_driver_sql(_PG_STAGE)  # also starts the transaction for COPY
            raw = await self.conn.get_raw_connection()
            self._raw = raw.driver_connection

    async def write(self, rows: list[StageRow]) -> None:
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

    async def lock(self) -> None:
        """Hold off API writes of enrollments until commit (enrollments.repository's lock); then
        take the load's time, after every write that got in first."""
        await self.conn.run_sync(enrollments_repository.hold_write_lock)
        self.set_now(whole_second(utcnow()))

    def set_now(self, now: dt.datetime) -> None:
        self.now = now
        self.now_param = self._param(now)

    def _param(self, value: dt.datetime) -> Any:
        return sqlite_timestamp(value) if self.sqlite else value

    async def existing(self) -> int:
        """How many staged ids the enrollments table holds already."""
        return int(
            (await self._one("SELECT count(*) FROM sis_stage s JOIN enrollments e ON e.id = s.id"))[
                0
            ]
        )

    async def diff(self, as_of: dt.datetime, touched: Touched) -> tuple[int, int]:
        """Stage what the load changes in `sis_diff` (one row per enrollment it updates, with the
        representation keys that change): (enrollments updated, API writes kept).

        A record whose API-written value (course_assessment) is newer than the extract (`as_of`)
        keeps it: the key is not written and not an update. Enrollments whose section, term or
        person the extract changed are listed too (the keys `section`, `term`, `confidential`),
        though their own rows are not written, so that the change record lets a reader of the feed
        rebuild what it may see.
        """
        await self.conn.exec_driver_sql(_DIFF_DDL[self.sqlite])
        await self._touched(touched)
        is_kept = f"coalesce(e.api_changed_at > :as_of, {'0' if self.sqlite else 'false'})"
        assessment = " OR ".join(f"e.{c} {self.distinct} s.{c}" for c in ASSESSMENT_COLUMNS)
        rest = [c for c in DATA_COLUMNS if c not in ASSESSMENT_COLUMNS]
        by_key: dict[str, list[str]] = {}
        for column in rest:
            by_key.setdefault(REPRESENTATION_KEY[column], []).append(
                f"e.{column} {self.distinct} s.{column}"
            )
        by_key["course_assessment"] = [f"(({assessment}) AND NOT {is_kept})"]
        writes = " OR ".join(cond for conds in by_key.values() for cond in conds)
        differs = " OR ".join(f"e.{c} {self.distinct} s.{c}" for c in DATA_COLUMNS)
        related = self._related("e", touched)
        keys_sql = " || ".join(
            f"CASE WHEN {' OR '.join(by_key.get(key, []) + related.get(key, []))} "
            f"THEN ',\"{key}\"' ELSE '' END"
            for key in KEY_ORDER
            if key in by_key or key in related
        )
        any_related = " OR ".join(c for conds in related.values() for c in conds) or "1 = 0"
        true, false = ("1", "0") if self.sqlite else ("true", "false")
        await self.conn.execute(
            text(
                "INSERT INTO sis_diff (id, netid, kind, keys, writes, kept) "
                f"SELECT s.id, s.netid, 'u', {keys_sql}, "
                f"CASE WHEN {writes} THEN {true} ELSE {false} END, "
                f"CASE WHEN ({assessment}) AND {is_kept} THEN {true} ELSE {false} END "
                "FROM sis_stage s JOIN enrollments e ON e.id = s.id "
                f"WHERE {differs} OR {any_related}"
            ),
            {"as_of": self._param(as_of)},
        )
        await self.conn.exec_driver_sql(
            f"CREATE UNIQUE INDEX {'temp.' if self.sqlite else ''}ix_sis_diff_id ON sis_diff (id)"
        )
        updated, kept = await self._one(
            "SELECT coalesce(sum(CASE WHEN writes THEN 1 ELSE 0 END), 0), "
            "coalesce(sum(CASE WHEN kept THEN 1 ELSE 0 END), 0) FROM sis_diff"
        )
        return int(updated), int(kept)

    async def _touched(self, touched: Touched) -> None:
        await self.conn.exec_driver_sql(_TOUCHED_DDL[self.sqlite])
        rows = [
            {"kind": kind, "id": key}
            for kind, keys in (
                ("section", touched.sections),
                ("term", touched.terms),
                ("person", touched.people),
            )
            for key in keys
        ]
        if rows:
            await self.conn.execute(
                text("INSERT INTO sis_touched (kind, id) VALUES (:kind, :id)"), rows
            )

    @staticmethod
    def _related(alias: str, touched: Touched) -> dict[str, list[str]]:
        """Per representation key, the condition that an enrollment's section, term or person
        (confidentiality) changed in this load; only the kinds that did."""
        related: dict[str, list[str]] = {}
        for key, column, kind, keys in (
            ("section", "section_id", "section", touched.sections),
            ("term", "term_id", "term", touched.terms),
            # Not a key of the representation: the person's confidentiality flipped, so readers
            # without the private scope stop (or start) seeing the enrollment. Recorded as an
            # update naming "confidential", one per enrollment of that person, so the feed can
            # tell such a reader that the record left (or entered) its view.
            ("confidential", "netid", "person", touched.people),
        ):
            if keys:
                related[key] = [
                    f"{alias}.{column} IN (SELECT id FROM sis_touched WHERE kind = '{kind}')"
                ]
        return related

    async def related_elsewhere(self, touched: Touched) -> None:
        """Enrollments the extract does not list whose section, term or person it changed (a
        partial load): their change record too (after `remove_absent`: deleted ones are not)."""
        related = self._related("e", touched)
        if not related:
            return
        keys_sql = " || ".join(
            f"CASE WHEN {' OR '.join(conds)} THEN ',\"{key}\"' ELSE '' END"
            for key, conds in related.items()
        )
        false = "0" if self.sqlite else "false"
        await self.conn.execute(
            text(
                "INSERT INTO sis_diff (id, netid, kind, keys, writes, kept) "
                f"SELECT e.id, e.netid, 'u', {keys_sql}, {false}, {false} FROM enrollments e "
                f"WHERE ({' OR '.join(c for conds in related.values() for c in conds)}) "
                "AND NOT EXISTS (SELECT 1 FROM sis_diff d WHERE d.id = e.id)"
            )
        )
        # Their lines (in an earlier extract) described the section, term or person as it was:
        # no stored hash may vouch for them any more, or a later refresh that skips those lines
        # would not see that they disagree with the new description (sis/service.py).
        await self.conn.execute(
            text(
                "UPDATE enrollments SET sis_line_hash = NULL WHERE sis_line_hash IS NOT NULL "
                "AND id IN (SELECT d.id FROM sis_diff d WHERE d.kind = 'u' AND NOT EXISTS "
                "(SELECT 1 FROM sis_stage s WHERE s.id = d.id))"
            )
        )

    async def _existing(self, sql: str) -> dict[str, tuple[Any, ...]]:
        rows = (await self.conn.execute(text(sql))).all()
        return {row[0]: tuple(row) for row in rows}

    async def compare_references(
        self,
        people: dict[str, bool],
        terms_seen: Iterable[TermRow],
        sections_seen: Iterable[SectionRow],
    ) -> References:
        """People (netid -> confidential), terms and sections new or changed in the extract:
        compared in Python (they number in the tens of thousands, not millions), so only those
        are written and the counts are exact on both backends (asyncpg's executemany reports no
        row counts)."""
        known_people = await self._existing("SELECT netid, confidential FROM people")
        known_terms = await self._existing(
            "SELECT id, lms_term_id, sis_ptrm_code, sis_term_code FROM terms"
        )
        known_sections = await self._existing(
            "SELECT id, lms_section_id, sis_section_id FROM sections"
        )
        refs = References(
            people={
                netid: conf
                for netid, conf in people.items()
                if netid not in known_people or bool(known_people[netid][1]) != conf
            },
            terms=[t for t in terms_seen if known_terms.get(t.id) != t],
            sections=[x for x in sections_seen if known_sections.get(x.id) != x],
        )
        # Changed, not new: only those have enrollments whose representation moves.
        refs.touched = Touched(
            people=[n for n in refs.people if n in known_people],
            terms=[t.id for t in refs.terms if t.id in known_terms],
            sections=[x.id for x in refs.sections if x.id in known_sections],
        )
        return refs

    async def upsert_references(self, refs: References) -> None:
        if refs.people:
            await self.conn.execute(
                text(
                    "INSERT INTO people (netid, confidential, updated_at) "
                    "VALUES (:netid, :confidential, :now) ON CONFLICT (netid) DO UPDATE SET "
                    "confidential = excluded.confidential, updated_at = excluded.updated_at"
                ),
                [
                    {"netid": netid, "confidential": conf, "now": self.now_param}
                    for netid, conf in refs.people.items()
                ],
            )
        if refs.terms:
            await self.conn.execute(
                text(
                    "INSERT INTO terms (id, lms_term_id, sis_ptrm_code, sis_term_code) "
                    "VALUES (:id, :lms, :ptrm, :code) ON CONFLICT (id) DO UPDATE SET "
                    "lms_term_id = excluded.lms_term_id, sis_ptrm_code = excluded.sis_ptrm_code, "
                    "sis_term_code = excluded.sis_term_code"
                ),
                [
                    {
                        "id": t.id,
                        "lms": t.lms_term_id,
                        "ptrm": t.sis_ptrm_code,
                        "code": t.sis_term_code,
                    }
                    for t in refs.terms
                ],
            )
        if refs.sections:
            await self.conn.execute(
                text(
                    "INSERT INTO sections (id, lms_section_id, sis_section_id) "
                    "VALUES (:id, :lms, :sis) ON CONFLICT (id) DO UPDATE SET "
                    "lms_section_id = excluded.lms_section_id, "
                    "sis_section_id = excluded.sis_section_id"
                ),
                [
                    {"id": x.id, "lms": x.lms_section_id, "sis": x.sis_section_id}
                    for x in refs.sections
                ],
            )

    async def remove_absent(self, *, skipped: bool = False) -> int:
        """Delete the enrollments the extract does not hold (their change record first); how
        many. `skipped`: the unchanged lines were not staged (`stage_unseen`): a row the extract
        lacks is one no line vouched for and none staged."""
        # Audit rows are kept: enrollment_audit has no foreign key to enrollments, on purpose.
        false = "0" if self.sqlite else "false"
        removed = await self.conn.execute(
            text(
                "INSERT INTO sis_diff (id, netid, kind, keys, writes, kept) "
                f"SELECT e.id, e.netid, 'd', '', {false}, {false} FROM enrollments e "
                f"WHERE {_UNVOUCHED + ' AND ' if skipped else ''}"
                "NOT EXISTS (SELECT 1 FROM sis_stage s WHERE s.id = e.id)"
            )
        )
        if removed.rowcount <= 0:
            return 0
        await self.conn.execute(
            text("DELETE FROM enrollments WHERE id IN (SELECT id FROM sis_diff WHERE kind = 'd')")
        )
        return int(removed.rowcount)

    async def update_enrollments(self, *, confirm_unchanged: bool) -> None:
        """Write the rows `diff` found changed: their columns (an API write newer than the
        extract kept), cache_date, and api_changed_at cleared where the SIS's value replaced one.

        Unchanged rows are not written: a complete load confirms them all by its row in
        sis_loads. A partial load (`confirm_unchanged`) stamps its own unchanged rows' cache_date,
        the one column it moves (a cost in proportion to that extract).
        """
        now = {"now": self.now_param}
        sets = ", ".join(
            f"{c} = CASE WHEN d.kept THEN enrollments.{c} ELSE s.{c} END"
            if c in ASSESSMENT_COLUMNS
            else f"{c} = s.{c}"
            for c in DATA_COLUMNS
        )
        replaced = " OR ".join(f"enrollments.{c} {self.distinct} s.{c}" for c in ASSESSMENT_COLUMNS)
        await self.conn.execute(
            text(
                f"UPDATE enrollments SET {sets}, cache_date = :now, api_changed_at = CASE "
                f"WHEN NOT d.kept AND ({replaced}) THEN NULL ELSE enrollments.api_changed_at END, "
                "sis_line_hash = s.line_hash "
                "FROM sis_stage s JOIN sis_diff d ON d.id = s.id "
                "WHERE s.id = enrollments.id AND d.writes"
            ),
            now,
        )
        # Unchanged rows whose stored line hash is not their line's: rows loaded before hashes
        # were kept (the first refresh after migration 0014 writes each once), rows whose hash a
        # partial load cleared, rows whose API write the load kept. Nothing for a row whose line
        # hashes as stored, so an unchanged refresh still writes no row.
        await self.conn.execute(
            text(
                "UPDATE enrollments SET sis_line_hash = s.line_hash FROM sis_stage s "
                "WHERE s.id = enrollments.id AND s.line_hash IS NOT NULL "
                f"AND enrollments.sis_line_hash {self.distinct} s.line_hash"
            )
        )
        if confirm_unchanged:
            await self.conn.execute(
                text(
                    "UPDATE enrollments SET cache_date = :now FROM sis_stage s "
                    "WHERE s.id = enrollments.id AND enrollments.cache_date < :now"
                ),
                now,
            )

    async def insert_enrollments(self, inserted: int) -> int:
        """Insert the staged enrollments that are new, in extract order; the largest pk before
        them (their change record is every pk above it)."""
        last = int((await self._one("SELECT coalesce(max(pk), 0) FROM enrollments"))[0])
        if not inserted:
            return last
        rebuild = await self._drop_indexes_for_bulk_insert(inserted)
        columns = ", ".join(DATA_COLUMNS)
        # New rows get their pk in extract order.
        await self.conn.execute(
            text(
                f"INSERT INTO enrollments (id, {columns}, cache_date, sis_line_hash) "
                f"SELECT id, {columns}, :now, line_hash FROM sis_stage s WHERE NOT EXISTS "
                "(SELECT 1 FROM enrollments e WHERE e.id = s.id) ORDER BY line"
            ),
            {"now": self.now_param},
        )
        for create_index in rebuild:
            await self.conn.exec_driver_sql(create_index)
        return last

    # --- a complete refresh that skips the lines a row's stored hash vouches for ---------------

    async def known_hashes(self) -> dict[int, int]:
        """Line hash -> 0 of every row a stored hash vouches for: loaded from a file, and not
        written by the API since (a line with the same bytes may have to undo that write, so it
        is parsed). Read with the API write lock held (PostgreSQL), or before the write lock and
        checked under it (SQLite: sis/service.py, "before the write lock"). One scan
        of the table; with a million rows the refresh's peak RSS was 277 MiB on PostgreSQL and
        517 MiB on SQLite (its 256 MiB page cache included; 471 MiB before the hashes)."""
        sql = (
            "SELECT sis_line_hash FROM enrollments "
            "WHERE sis_line_hash IS NOT NULL AND api_changed_at IS NULL"
        )
        if self.sqlite:
            rows = (await self.conn.exec_driver_sql(sql)).all()
            return dict.fromkeys((row[0] for row in rows), 0)
        records = await self._raw.fetch(sql)
        return dict.fromkeys((record[0] for record in records), 0)

    async def marks(self) -> tuple[int, int]:
        """SQLite, a refresh that stages before it takes the write lock: in the snapshot its line
        hashes were read from, the newest load (its id) and the newest audit row (its pk).
        Nothing else writes enrollments: a load records itself in `sis_loads`, and every write of
        a task's (enrollments/jobs.py) inserts an audit row in its transaction. SQLite has one
        writer at a time, so a row committed later has a higher id (neither table is pruned)."""
        row = await self._one(
            "SELECT (SELECT coalesce(max(id), 0) FROM sis_loads), "
            "(SELECT coalesce(max(pk), 0) FROM enrollment_audit)"
        )
        return int(row[0]), int(row[1])

    async def begin_write(self) -> None:
        """SQLite: end the staging transaction (it wrote TEMP tables only) and begin the write
        transaction, `BEGIN IMMEDIATE`: it waits (busy timeout) for the writer of the moment."""
        await self.conn.commit()
        await self.conn.execution_options(registrar_begin="IMMEDIATE")
        await self.conn.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE now, not at the next query

    async def newest_load(self) -> int:
        return int((await self._one("SELECT coalesce(max(id), 0) FROM sis_loads"))[0])

    async def written_since(self, audit_pk: int) -> list[int]:
        """The stored line hashes of the enrollments a task wrote (or looked at: a superseded
        task audits without writing) since the audit row `audit_pk`: an index range of the audit
        and a probe per row, as many as tasks were applied meanwhile."""
        rows = await self.conn.execute(
            text(
                "SELECT DISTINCT e.sis_line_hash FROM enrollment_audit a "
                "JOIN enrollments e ON e.id = a.enrollment_id "
                "WHERE a.pk > :pk AND e.sis_line_hash IS NOT NULL"
            ),
            {"pk": audit_pk},
        )
        return [int(row[0]) for row in rows]

    async def stage_unseen(self, hashes: list[int]) -> None:
        await self.conn.exec_driver_sql(_UNSEEN_DDL[self.sqlite])
        if not hashes:
            return
        if self.sqlite:
            await self.conn.exec_driver_sql(
                "INSERT INTO temp.sis_unseen VALUES (?)", [(h,) for h in hashes]
            )
        else:
            await self._raw.copy_records_to_table(
                "sis_unseen", records=[(h,) for h in hashes], columns=("h",)
            )
            await self.conn.exec_driver_sql("ANALYZE sis_unseen")

    async def staged_twice(self) -> bool:
        """Whether a staged line has the id of a row whose line was skipped as unchanged: that
        id is on two lines (the full load names them)."""
        return (
            await self.conn.execute(
                text(
                    "SELECT 1 FROM sis_stage s JOIN enrollments e ON e.id = s.id "
                    f"WHERE NOT {_UNVOUCHED} LIMIT 1"
                )
            )
        ).first() is not None

    async def vanishing_confidential(self) -> set[str]:
        """Confidential people with a row whose line changed or left the extract: that line may
        have been what made them confidential (a person is if any line says so), which only the
        lines skipped could tell."""
        true = "1" if self.sqlite else "true"
        # SQLite: from the confidential people to their enrollments (CROSS JOIN fixes the order):
        # its planner scanned every enrollment instead, even with statistics, 0.50 s against
        # 0.02 s for 200,000 enrollments of 6,802 people, 187 confidential (2026-12-02), and
        # this runs under the refresh's write lock.
        join = "people p CROSS JOIN enrollments e" if self.sqlite else "people p JOIN enrollments e"
        rows = await self.conn.execute(
            text(
                f"SELECT DISTINCT e.netid FROM {join} ON p.netid = e.netid "
                f"WHERE p.confidential = {true} AND {_UNVOUCHED}"
            )
        )
        return {row[0] for row in rows}

    async def extract_counts(self) -> tuple[int, int, int]:
        """People, sections and terms of the enrollments: after a complete load, the extract's."""
        # A probe of an enrollment index per person, section and term (tens of thousands), not a
        # count(DISTINCT) over a million rows (a sort each on PostgreSQL).
        row = await self._one(
            "SELECT (SELECT count(*) FROM people p WHERE EXISTS "
            "(SELECT 1 FROM enrollments e WHERE e.netid = p.netid)), "
            "(SELECT count(*) FROM sections x WHERE EXISTS "
            "(SELECT 1 FROM enrollments e WHERE e.section_id = x.id)), "
            "(SELECT count(*) FROM terms t WHERE EXISTS "
            "(SELECT 1 FROM enrollments e WHERE e.term_id = t.id))"
        )
        return int(row[0]), int(row[1]), int(row[2])

    async def record_load(self, row: dict[str, Any]) -> None:
        await self.conn.execute(
            text(
                f"INSERT INTO sis_loads ({', '.join(row)}) "
                f"VALUES ({', '.join(':' + k for k in row)})"
            ),
            {**row, "loaded_at": self.now_param, "as_of": self._param(row["as_of"])},
        )

    async def record_changes(self, created_after: int) -> None:
        """The change record of the load (events/record.py), set-based, as the transaction's last
        statements: deletions and updates from `sis_diff`, creations from the new pks."""
        await self.conn.run_sync(lock_commit_order)
        when = {"t": self._param(utcnow())}
        changed = "'[' || substr(d.keys, 2) || ']'"
        if not self.sqlite:
            changed = f"CAST({changed} AS json)"
        await self.conn.execute(
            text(
                "INSERT INTO events (type, subject, origin, netid, changed, time) "
                "SELECT CASE WHEN d.kind = 'd' THEN 'enrollment.deleted' "
                "ELSE 'enrollment.updated' END, d.id, 'sis', d.netid, "
                f"CASE WHEN d.kind = 'd' THEN NULL ELSE {changed} END, :t FROM sis_diff d "
                "WHERE d.kind = 'd' OR d.keys <> '' ORDER BY d.kind, d.id"
            ),
            when,
        )
        await self.conn.execute(
            text(
                "INSERT INTO events (type, subject, origin, netid, time) "
                "SELECT 'enrollment.created', id, 'sis', netid, :t FROM enrollments "
                "WHERE pk > :last ORDER BY pk"
            ),
            {**when, "last": created_after},
        )

    async def _drop_indexes_for_bulk_insert(self, inserting: int) -> list[str]:
        """On SQLite, when a load mostly adds rows, drop the secondary indexes and build them again
        afterwards: one sort per index instead of a random b-tree insert per row and index.

        Safe because SQLite's DDL is transactional (a failed load rolls the indexes back in place)
        and WAL readers keep their snapshot, old indexes included. On PostgreSQL DROP INDEX takes
        an ACCESS EXCLUSIVE lock, which would block every reader for the whole load: there, only
        into an empty table (`_drop_pg_indexes_of_empty_table`). The definitions come from
        sqlite_master, so the migrations stay the one source of the schema.
        """
        if inserting < BULK_REBUILD_MIN:
            return []
        if not self.sqlite:
            return await self._drop_pg_indexes_of_empty_table()
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

    async def _drop_pg_indexes_of_empty_table(self) -> list[str]:
        """PostgreSQL, a first load (the table is empty): drop the enrollment indexes and
        foreign keys (the primary key stays) and build them again after the INSERT, as SQLite
        does above. A row-by-row insert into 13 b-trees, with three foreign-key probes per row,
        was most of a 115 s first load of a million lines; with the drop and rebuild it took
        46.0 s (2026-12-02, bench/refresh_bench.py, 19.2 s of it the loading process's CPU).

        DROP INDEX holds an ACCESS EXCLUSIVE lock on enrollments until the commit, so readers of
        the table wait for the load: only when it is empty, when they have nothing to read yet.
        Transactional like everything here: a failed load rolls the drops back. The definitions
        come from the catalog, so the migrations stay the one source of the schema."""
        empty = not (await self._one("SELECT EXISTS (SELECT 1 FROM enrollments)"))[0]
        if not empty:
            return []
        constraints = (
            await self.conn.exec_driver_sql(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'enrollments'::regclass AND contype IN ('f', 'u') "
                "ORDER BY contype DESC, conname"
            )
        ).all()
        indexes = (
            await self.conn.exec_driver_sql(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'enrollments'::regclass AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
                "ORDER BY c.relname"
            )
        ).all()
        for name, _definition in constraints:
            await self.conn.exec_driver_sql(f'ALTER TABLE enrollments DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            await self.conn.exec_driver_sql(f'DROP INDEX "{name}"')
        # Sorts in memory for the rebuild (the server's default, 64 MiB, spills a million ids).
        rebuild = ["SET LOCAL maintenance_work_mem = '256MB'"]
        rebuild += [definition for _name, definition in indexes]
        rebuild += [
            f'ALTER TABLE enrollments ADD CONSTRAINT "{name}" {definition}'
            for name, definition in constraints
        ]
        return rebuild

    async def analyze(self, *, force: bool) -> bool:
        """Fresh statistics for the planners, in the load's own transaction (a load killed after
        its commit cannot leave new data without them): when the load changed much (`force`),
        or when the tables have none yet (a database restored, or loaded by an older version that
        ran ANALYZE after its commit). Whether it ran."""
        if not force:
            if self.sqlite:
                missing = (
                    not (
                        await self._one(
                            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
                        )
                    )[0]
                    or not (
                        await self._one(
                            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'enrollments'"
                        )
                    )[0]
                )
            else:
                missing = not (
                    await self._one(
                        "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() "
                        "AND tablename = 'enrollments'"
                    )
                )[0]
            if not missing:
                return False
        if self.sqlite:
            # A sample per index is plenty for the planner and keeps this under a second.
            await self.conn.exec_driver_sql("PRAGMA analysis_limit = 2000")
            await self.conn.exec_driver_sql("ANALYZE")
            await self.conn.exec_driver_sql("PRAGMA analysis_limit = 0")
        else:
            await self.conn.exec_driver_sql("ANALYZE enrollments, people, sections, terms")
        return True

    async def finish(self) -> None:
        if self.sqlite:
            for table in _TEMP_TABLES:
                await self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table}")
            await self.conn.exec_driver_sql(f"PRAGMA cache_size = {int(self._cache)}")
            await self.conn.exec_driver_sql("PRAGMA temp.cache_size = -2000")
        # PostgreSQL: ON COMMIT DROP.


# --- the record of scheduled refreshes (sis/refresh.py decides; these are its statements) -------

REFRESHES = cast(Table, SisRefresh.__table__)
R = REFRESHES.c
RUNNING, OK, FAILED = "running", "ok", "failed"
# PostgreSQL: begin_refresh's transactions take this advisory lock, so two workers deciding at the
# same instant decide one after the other (SQLite's write lock does the same there).
REFRESH_LOCK = 0x5155_5F52_4546  # any constant the service uses for nothing else
ABANDONED = "its task ended before the refresh finished; nothing was loaded"


def latest_refresh(connection: Connection) -> Row[Any] | None:
    return connection.execute(select(REFRESHES).order_by(R.id.desc()).limit(1)).first()


def begin_refresh(
    connection: Connection,
    *,
    task_id: str,
    attempt: int,
    extract: str,
    size: int,
    mtime_ns: int,
    now: dt.datetime,
) -> tuple[str, Row[Any] | None]:
    """Decide whether this task refreshes from the file as seen, and if so record that it does.

    ("start", row): a new attempt, `running`, held by this task's attempt; ("resume", row): this
    task held the running attempt (its worker was killed, the lease expired, it runs again);
    ("busy", row): another live task holds the running attempt; ("unchanged", row): the newest
    attempt saw this very file (loaded, or failed: a bad file is tried again only once it
    changes). A running attempt whose task ended (out of attempts) is closed as failed first
    (ABANDONED), and the file it was loading is then tried again.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": REFRESH_LOCK})
    last = latest_refresh(connection)
    if last is not None and last.status == RUNNING:
        if last.task_id == task_id:
            connection.execute(
                update(REFRESHES)
                .where(R.id == last.id)
                .values(
                    task_attempt=attempt, extract=extract, file_size=size, file_mtime_ns=mtime_ns
                )
            )
            return "resume", latest_refresh(connection)
        owner = connection.scalar(select(TASKS.c.status).where(TASKS.c.id == last.task_id))
        if owner == TaskStatus.ACCEPTED:
            return "busy", last
        connection.execute(
            update(REFRESHES)
            .where(R.id == last.id)
            .values(status=FAILED, finished_at=now, message=ABANDONED)
        )
        last = latest_refresh(connection)
    # An abandoned attempt (its task gave up: the database away, workers killed) says nothing
    # about the file, unlike a bad extract: the same file is loaded again.
    if (
        last is not None
        and last.message != ABANDONED
        and (last.extract, last.file_size, last.file_mtime_ns) == (extract, size, mtime_ns)
    ):
        return "unchanged", last
    connection.execute(
        insert(REFRESHES).values(
            task_id=task_id,
            task_attempt=attempt,
            extract=extract,
            file_size=size,
            file_mtime_ns=mtime_ns,
            status=RUNNING,
            started_at=now,
        )
    )
    return "start", latest_refresh(connection)


def end_refresh(
    connection: Connection,
    refresh_id: int,
    *,
    task_id: str,
    attempt: int,
    now: dt.datetime,
    status: str,
    message: str | None = None,
    counts: dict[str, int | None] | None = None,
) -> bool:
    """Close the running attempt, if this task's attempt still holds it (False if not)."""
    result = connection.execute(
        update(REFRESHES)
        .where(
            R.id == refresh_id,
            R.task_id == task_id,
            R.task_attempt == attempt,
            R.status == RUNNING,
        )
        .values(status=status, finished_at=now, message=message, **(counts or {}))
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def refresh_figures(connection: Connection) -> tuple[Row[Any] | None, Row[Any] | None, int]:
    """The newest attempt, the newest success, and how many attempts failed: three index
    probes, for `registrar sis status`, /metrics and /health."""
    last_ok = connection.execute(
        select(REFRESHES).where(R.status == OK).order_by(R.finished_at.desc()).limit(1)
    ).first()
    failures = connection.scalar(select(func.count()).where(R.status == FAILED))
    return latest_refresh(connection), last_ok, int(failures or 0)
