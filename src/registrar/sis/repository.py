"""The SIS load's SQL: a staging table and set-based statements, per dialect.

The one place that reaches the database outside `Database.read`/`write` (see db/__init__.py): a
load streams batches on an `AsyncConnection` from `Database.bulk()`, so the next batch is parsed
while the driver writes this one (aiosqlite works in its own thread; PostgreSQL takes COPY from the
event loop). Raw SQL: the enrollment columns are listed once, in `DATA_COLUMNS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from registrar.db.base import sqlite_timestamp
from registrar.sis.records import LineError, SectionRow, StageRow, TermRow

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
}
STAGE_COLUMNS = StageRow._fields
assert tuple(_STAGE_TYPES) == STAGE_COLUMNS
# The enrollment columns a line carries; "unchanged" means none of these differs.
DATA_COLUMNS = STAGE_COLUMNS[2:]


def _stage_ddl(dialect: int, suffix: str = "") -> str:
    columns = ", ".join(f"{name} {types[dialect]}" for name, types in _STAGE_TYPES.items())
    return f"CREATE TEMP TABLE sis_stage ({columns}){suffix}"


_SQLITE_STAGE = _stage_ddl(0)
_PG_STAGE = _stage_ddl(1, " ON COMMIT DROP")


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

    async def count(self) -> tuple[int, int]:
        """(staged ids the enrollments table holds already, how many of those differ)."""
        differs = " OR ".join(f"e.{c} {self.distinct} s.{c}" for c in DATA_COLUMNS)
        existing, changed = await self._one(
            "SELECT count(*), coalesce(sum(CASE WHEN " + differs + " THEN 1 ELSE 0 END), 0) "
            "FROM sis_stage s JOIN enrollments e ON e.id = s.id"
        )
        return int(existing), int(changed)

    async def _existing(self, sql: str) -> dict[str, tuple[Any, ...]]:
        rows = (await self.conn.execute(text(sql))).all()
        return {row[0]: tuple(row) for row in rows}

    async def upsert_references(
        self,
        people: dict[str, bool],
        terms_seen: Iterable[TermRow],
        sections_seen: Iterable[SectionRow],
    ) -> int:
        """People (netid -> confidential), terms and sections: compared in Python (they number in
        the tens of thousands, not millions), so only new or changed ones are written and the
        counts are exact on both backends (asyncpg's executemany reports no row counts). Returns
        how many people were added or changed."""
        known_people = await self._existing("SELECT netid, confidential FROM people")
        changed_people = [
            {"netid": netid, "confidential": conf, "now": self.now_param}
            for netid, conf in people.items()
            if netid not in known_people or bool(known_people[netid][1]) != conf
        ]
        if changed_people:
            await self.conn.execute(
                text(
                    "INSERT INTO people (netid, confidential, updated_at) "
                    "VALUES (:netid, :confidential, :now) ON CONFLICT (netid) DO UPDATE SET "
                    "confidential = excluded.confidential, updated_at = excluded.updated_at"
                ),
                changed_people,
            )
        known_terms = await self._existing(
            "SELECT id, lms_term_id, sis_ptrm_code, sis_term_code FROM terms"
        )
        terms = [
            {"id": t.id, "lms": t.lms_term_id, "ptrm": t.sis_ptrm_code, "code": t.sis_term_code}
            for t in terms_seen
            if known_terms.get(t.id) != t
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
            {"id": x.id, "lms": x.lms_section_id, "sis": x.sis_section_id}
            for x in sections_seen
            if known_sections.get(x.id) != x
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
        return len(changed_people)

    async def remove_absent(self) -> int:
        """Delete the enrollments the extract does not hold; how many."""
        # Audit rows are kept: enrollment_audit has no foreign key to enrollments, on purpose.
        removed = await self.conn.execute(
            text(
                "DELETE FROM enrollments WHERE NOT EXISTS "
                "(SELECT 1 FROM sis_stage s WHERE s.id = enrollments.id)"
            )
        )
        return max(removed.rowcount, 0)

    async def upsert_enrollments(self, *, inserted: int, updated: int, unchanged: int) -> None:
        """Three set-based statements rather than one INSERT ... ON CONFLICT DO UPDATE.

        An upsert rewrites every column, so every index entry, of every row it touches; most rows
        of a periodic extract are unchanged, and for them only cache_date (and its index) moves.
        """
        now = {"now": self.now_param}
        differs = " OR ".join(f"enrollments.{c} {self.distinct} s.{c}" for c in DATA_COLUMNS)
        if updated:
            sets = ", ".join(f"{c} = s.{c}" for c in DATA_COLUMNS)
            await self.conn.execute(
                text(
                    f"UPDATE enrollments SET {sets}, cache_date = :now FROM sis_stage s "
                    f"WHERE s.id = enrollments.id AND ({differs})"
                ),
                now,
            )
        if unchanged:
            await self.conn.execute(
                text(
                    "UPDATE enrollments SET cache_date = :now FROM sis_stage s "
                    f"WHERE s.id = enrollments.id AND enrollments.cache_date {self.distinct} :now"
                ),
                now,
            )
        if inserted:
            rebuild = await self._drop_indexes_for_bulk_insert(inserted)
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


async def analyze(conn: AsyncConnection) -> None:
    """Fresh statistics after a bulk change, so the planners pick the indexes."""
    if conn.dialect.name == "sqlite":
        # A sample per index is plenty for the planner and keeps this under a second.
        await conn.exec_driver_sql("PRAGMA analysis_limit = 2000")
        await conn.exec_driver_sql("ANALYZE")
        await conn.exec_driver_sql("PRAGMA analysis_limit = 0")
    else:
        await conn.exec_driver_sql("ANALYZE enrollments, people, sections, terms")
