"""The loads of SIS extracts (one row per load that committed, spec section 6) and the record of
scheduled SIS refreshes (one row per attempt, sis/refresh.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from registrar.db.base import Base, UTCDateTime


class SisLoad(Base):
    """A load that committed: when it confirmed its records, what it was, what it changed.

    It is also how `cache_date` is kept without rewriting rows. A complete load (`--replace`, and
    every scheduled refresh) confirms every enrollment that survives it, so an enrollment's
    `cache_date` is the later of its own column (the last load that changed it, or confirmed it in
    a partial load) and `loaded_at` of the newest complete load: an unchanged refresh writes this
    one row and no enrollment (enrollments/repository.py reads it).
    """

    __tablename__ = "sis_loads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # When the load began applying, under the load lock: its records' cache_date.
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    # When the extract was taken from the SIS (--as-of; default the file's modification time).
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    # Whether it held every enrollment (--replace): then it confirmed all of them.
    complete: Mapped[bool] = mapped_column(Boolean, nullable=False)
    source: Mapped[str | None] = mapped_column(String(1024))
    lines: Mapped[int] = mapped_column(Integer, nullable=False)
    inserted: Mapped[int] = mapped_column(Integer, nullable=False)
    updated: Mapped[int] = mapped_column(Integer, nullable=False)
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False)
    removed: Mapped[int] = mapped_column(Integer, nullable=False)
    # Records whose API-written value was newer than the extract, and so kept.
    kept: Mapped[int] = mapped_column(Integer, nullable=False)
    milliseconds: Mapped[int | None] = mapped_column(Integer)  # how long it took

    __table_args__ = (
        # The newest complete load, in one probe: read with every enrollment.
        Index("ix_sis_loads_complete_loaded_at", "complete", "loaded_at"),
    )


class SisRefresh(Base):
    """One attempt to refresh from the extract file: the file as it was seen (path, size,
    modification time), the task that made it, and how it ended. The newest row is what the next
    refresh compares the file with; one `running` row at most (the partial unique index)."""

    __tablename__ = "sis_refreshes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(24), nullable=False)
    # The task's attempt that holds the refresh: only it may record the end (a worker whose lease
    # expired while it still ran cannot commit over the attempt that took the task over).
    task_attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    extract: Mapped[str] = mapped_column(Text, nullable=False)
    # -1 for both when the file could not be read.
    file_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    file_mtime_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # running, ok, failed
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    message: Mapped[str | None] = mapped_column(Text)  # a failure's, as the load wrote it
    # The load's counts (null until it succeeds); kept = API writes the load did not undo.
    lines: Mapped[int | None] = mapped_column(Integer)
    inserted: Mapped[int | None] = mapped_column(Integer)
    updated: Mapped[int | None] = mapped_column(Integer)
    unchanged: Mapped[int | None] = mapped_column(Integer)
    removed: Mapped[int | None] = mapped_column(Integer)
    kept: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index(
            "ix_sis_refreshes_running",
            "status",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index("ix_sis_refreshes_status_finished", "status", "finished_at"),
    )
